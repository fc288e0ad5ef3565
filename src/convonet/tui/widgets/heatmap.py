"""The confusion matrix as a coloured text heatmap (see ``convonet.rendering``).

Rows are true classes, columns predicted ones, with the class names on both axes and the
count in each cell. A cell's colour is its share of the row (what fraction of that true
class went there), so a good model shows a bright diagonal whatever the class sizes. The
one implementation is in ``convonet.rendering``, which headless draws with too.
"""

from __future__ import annotations

from convonet.rendering import confusion_table, legend, share_colour, shorten

__all__ = ["confusion_table", "legend", "share_colour", "shorten"]

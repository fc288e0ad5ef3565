"""The Textual front end of convonet: the app, its screens, dialogs and commands.

It holds no machine-learning logic: screens call ``convonet.core`` in thread workers
(see ``convonet.tui.tasks``) and show the events the core reports.
"""

"""The UI-free machine-learning core of convonet.

Plain Python, Keras and scikit-learn. It never imports textual: every task reports progress
through ``convonet.core.events`` and can be used from a script.
"""

"""convonet: train, tune and test Keras image classifiers from the terminal."""

__version__ = "0.1.0"

"""edgetop: one terminal for a hybrid cloud-edge AI fleet."""

__version__ = "0.1.0"

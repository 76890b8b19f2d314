"""awrepro: does the code behind a paper still run?"""

__version__ = "0.1.0"

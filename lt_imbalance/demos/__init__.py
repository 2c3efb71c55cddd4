"""Demonstrations built on the library (not part of its API): the 2-D margin demo."""

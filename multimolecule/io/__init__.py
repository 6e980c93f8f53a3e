from .alignment import read_alignment as read_alignment

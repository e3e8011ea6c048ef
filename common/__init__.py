"""Lowest layer: small helpers every package may use (atomic files, hashing).

It imports nothing of ours, so gpu/, jobs/ and wallet/ can share it without
depending on each other or on app/.
"""

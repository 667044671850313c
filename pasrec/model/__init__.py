"""PASRec network, its baselines' networks, diffusion sampling and checkpoint I/O.

Nothing here imports ``training`` or ``service``: a checkpoint is self-describing.
"""

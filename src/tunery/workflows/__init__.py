"""Workflows: what sits above the config and the study and drives them.

- ``objective``: the built-in objective, one network per trial, built from a config;
- ``panda``: babysit one model epoch by epoch (nudge, pause, roll back).

They import the config, the study, the executors and the engine; nothing below imports them.
"""

"""The tuning config: ``tune.toml`` read into validated, frozen objects before anything runs.

::

    [study]                      # which study, and what "better" means
    name = "digits"              # default: the config file's name without .toml
    direction = "maximize"       # default: "minimize" for the metric "loss", else "maximize"
    metric = "val_accuracy"      # val_accuracy, train_accuracy or loss (the last epoch's)
    seed = 0                     # seeds every draw of the samplers
    storage = "sqlite:///tunery.db"   # relative to the working directory, as SQLite URLs are

    [data]                       # what tunery.data.load_dataset gets
    source = "digits"            # "digits", or a path: relative to the folder of the config file
    classes = "0-5"              # optional: a range, a list "0,2,4", or a TOML list
    normalize = "standardize"    # or "scale"
    seed = 0                     # seeds the split
    val_fraction = 0.15
    test_fraction = 0.15
    image_size = 64              # photos are resized to image_size² RGB

    [data.augment]               # optional: random changes to each training image, per epoch
    rotation = 15                # degrees: an angle drawn from [-15, 15]
    scale = 0.1                  # zoom by a factor drawn from [0.9, 1.1]
    flip = true                  # mirror left-right half the time (a sign means the same mirrored)
    brightness = 0.2             # multiply by a factor drawn from [0.8, 1.2]
    contrast = 0.2               # scale the distance from the mean grey by [0.8, 1.2]
    hue = 0.05                   # turn colours by up to ±0.05 of the colour circle (±18°)
    temperature = 0.1            # warmer/cooler light: red ×(1+t), blue ×(1−t), |t| ≤ 0.1
    mix = 0.3                    # mix the colour channels: rows of I + U(−0.3, 0.3)³ˣ³, |row| = 1

    [data.validation_augment]    # optional: select on changed photos too (same keys, fixed draws)
    rotation = 30                # the validation split becomes its clean photos and
    hue = 0.05                   # validation_copies (in [data], default 3) copies changed once

    [model]                      # the FIXED parts of the trainer (every key optional)
    layers = [64, 32]            # hidden layer sizes
    batchnorm = true
    activation = "relu"          # relu, tanh, sigmoid
    optimizer = "adam"           # gd, momentum, rmsprop, adam
    lr = 1e-3
    beta = 0.9                   # β of momentum and RMSprop, β1 of Adam
    beta2 = 0.999                # β2 of Adam
    epsilon = 1e-8               # ε of RMSprop and Adam
    batch_size = 64
    l2 = 0.0                     # λ: the cost adds λ/(2m)·Σ‖W‖²
    keep_prob = 1.0              # dropout keep probability (1: no dropout)
    decay = "none"               # none, inverse_time, exponential, inverse_sqrt, step
    decay_rate = 0.95            # optional: rate / rate / k / factor of that schedule
    decay_every = 10             # optional: the step schedule's period in epochs
    epochs = 20
    backend = "numpy"            # or "torch" (the PyTorch twin, extra tunery[torch])
    seed = 0                     # initial weights, mini-batch order and dropout masks

    [space]                      # the SEARCHED settings: any of SEARCHABLE
    lr = { low = 1e-4, high = 1, scale = "log" }
    beta = { low = 0.9, high = 0.999, scale = "one_minus_log" }
    units = { low = 10, high = 100, type = "int" }
    batch_size = { choices = [32, 64, 128, 256] }
    image_size = { choices = [16, 32, 64] }   # photos only: [data].image_size, searched
    augment.rotation = { low = 0, high = 30 }  # any [data.augment] amount, as augment.<name>

    [run]                        # how the search runs (tunery tune's flags override these)
    trials = 20                  # finished trials to reach, over all rounds
    workers = 2                  # processes (default: the CPU cores this process may use)
    rounds = 1                   # coarse to fine: zoom between rounds
    sampler = "random"           # random, grid, sobol
    pruner = "none"              # none, median or asha (tunery.pruners)
    pruner_options = { warmup_epochs = 3 }   # optional: the pruner's keywords
    epochs = 15                  # optional: overrides model.epochs
    top = 0.1                    # zoom around the best 10% (an int: that many trials)
    margin = 0.1                 # widen each box by 10% of its width on either side
    checkpoint_every = 0         # save the trainer every N epochs (0: never)
    executor = "local"           # or "ray": Ray tasks (extra tunery[ray], docs/cluster.md)
    address = "auto"             # optional, Ray's: auto, HOST:PORT or ray://HOST:PORT
    resources = { cpu = 1, gpu = 0.25 }   # optional, Ray's: what each trial holds
    checkpoint_dir = "s3://bucket/run"    # optional: checkpoints there, not in the store

    [pbt]                        # tunery pbt: population-based training (tunery.workflows.pbt)
    population = 8               # members training side by side ([run] workers/executor run them)
    perturbation_interval = 4    # epochs between exploit/explore steps
    quantile_fraction = 0.25     # the bottom quarter copies the top quarter (at most 0.5)
    resample_probability = 0.25  # per parameter: redraw it from the space instead of perturbing
    perturbation_factors = [0.8, 1.25]   # multiply on the parameter's own scale

How the searched ``units`` and ``num_layers`` map onto ``[model].layers``: ``num_layers = n``
keeps the first ``n`` sizes of ``layers`` (repeating its last size when ``n`` is larger), then
``units = u`` makes every hidden layer ``u`` wide. So ``units`` alone resizes all hidden layers and
keeps their count, ``num_layers`` alone changes the count and keeps the sizes, and both give
``num_layers`` hidden layers of ``units`` each.

Every rule broken raises :class:`tunery.ConfigError` naming the field's path (``run.trials``,
``space.lr.low``), the value and the rule: an unknown section or key, a wrong type, a bad bound, a
searched name that is no model setting, a setting the chosen optimizer ignores. Nothing is
written or opened while a config is read.
"""

from __future__ import annotations

from tunery.config._reading import DEFAULT_TOML, config_from_dict, default_config, load_config
from tunery.config._sections import (
    AUGMENT_SEARCHABLE,
    DATA_SEARCHABLE,
    DEFAULT_STORAGE,
    GUIDED,
    METRICS,
    SAMPLERS,
    SEARCHABLE,
    SECTIONS,
    DataSection,
    ModelSection,
    PBTSection,
    RunSection,
    StudySection,
)
from tunery.config._whole import TuneConfig, hidden_layers, trial_data, trial_model

__all__ = [
    "AUGMENT_SEARCHABLE",
    "DATA_SEARCHABLE",
    "DEFAULT_STORAGE",
    "DEFAULT_TOML",
    "GUIDED",
    "METRICS",
    "SAMPLERS",
    "SEARCHABLE",
    "SECTIONS",
    "DataSection",
    "ModelSection",
    "PBTSection",
    "RunSection",
    "StudySection",
    "TuneConfig",
    "config_from_dict",
    "default_config",
    "hidden_layers",
    "load_config",
    "trial_data",
    "trial_model",
]

"""catdnn: a from-scratch NumPy deep neural network that tells cat photos from non-cat photos.

Shape convention (the course's, used everywhere in this package)
-----------------------------------------------------------------
* ``X`` has shape ``(n_x, m)``: one example per **column**; ``n_x = 64 * 64 * 3 = 12288``.
* ``Y`` has shape ``(1, m)`` with labels in {0, 1} (1 = cat).
* Layer ``l`` (1-based, as in the course) has ``W[l]`` of shape ``(n_l, n_{l-1})`` and ``b[l]`` of
  shape ``(n_l, 1)``; ``Z[l] = W[l] · A[l-1] + b[l]`` and ``A[l] = g(Z[l])``.
* Parameters are a Python list indexed by layer, ``params[l - 1] == (W[l], b[l])``; gradients have
  exactly the same structure, ``grads[l - 1] == (dW[l], db[l])``.
* Everything is float64.
* Counting: ``iteration`` is a 0-based index (the course's ``i``), ``iterations`` a run's length,
  ``iterations_done`` how many iterations have been completed.

Modules, from the ground floor up (a module imports only modules above it in this list, never
one that imports it back; ``tests/test_imports.py`` checks it):

* ``errors``, ``threads``: the exceptions; BLAS thread limits; ``classroom`` (the app's mode, identities
  without accounts, a class's code, members and settings: every store that takes a caller imports it)
* ``data`` (the dataset and the input size), ``images`` (users' photos), ``photos`` (a folder or
  zip of photos as a dataset), ``augment`` (flips and shifts)
* ``network``: the dense math, one copy (init, forward, backward, cost, predict)
* ``arch`` (the architecture spec, MLP or CNN), ``conv_layers`` (im2col convolution, max pooling,
  the input step), ``cnn`` (the convolutional net's forward, backward, predictions, gradient check)
* ``optim``: optimisers (each hyperparameter declared once, ``optim.HYPERPARAMETERS``), learning-rate
  schedules, mini-batches
* ``probe`` (what the dashboard shows of a model's insides), ``diagnose`` (what went wrong)
* ``solvers``: one step of training: direct, Gram or CNN, one contract (``solvers.Solver``)
* ``config`` (TrainConfig, presets, limits), ``model`` and ``model_io`` (the Model, an Ensemble of models, files),
  ``train`` (the one training loop, its divergence rule, ``fit()``), ``stepper`` (one iteration in
  three steps, described for the Step page)
* ``evaluate``, ``validation``, ``labels`` (what a run is called), ``history`` (the run history in
  SQLite), ``workers`` (training on a pool of processes or a Dask cluster, shared fairly: round-robin
  across owners, limits, pause), ``cluster`` (Dask scheduler addresses), ``sweep`` (many runs), ``search`` (random
  search scored by cross-validation, on the sweep runner), ``lessons``,
  ``share`` (settings as link parameters), ``cli``
* ``notebook`` (``fit()``'s progress bar, a Model's summary in Jupyter), ``figures`` (the training
  curves as Plotly figures, plain dicts), ``serve`` (``catdnn app``: the dashboard from a checkout or
  the installed copy)

Where to change what
--------------------
===================================  ==============================================================================
To add or change ...                 change ...
===================================  ==============================================================================
a weight init                        ``network.INITS`` (+ ``INIT_DESCRIPTIONS``) and a test
an optimizer                         its class in ``optim`` and ``optim.OPTIMIZERS``, a test; a hyperparameter it is
                                     the first to use: one entry of ``optim.HYPERPARAMETERS`` and one
                                     ``TrainConfig`` field (the checks, CLI flags, form fields, link keys and the
                                     random search's draws are made from them)
a learning-rate schedule             ``optim.SCHEDULES`` (+ ``SCHEDULE_DESCRIPTIONS``) and a test
a dense layer's step                 ``network.forward`` / ``network.backward`` (every solver calls them)
a conv or pooling layer's step       ``conv_layers``, then ``cnn.forward_maps`` / ``cnn.backward``
a step of the architecture spec      ``arch.parse_arch`` and ``Arch`` (shapes, parameters, step memory)
how one training step is taken       a solver in ``solvers`` (the ``Solver`` protocol), picked by ``solver_choice``
the loop (events, Stop, divergence)  ``train.Trainer.run`` (``train.EXPLODE_FACTOR``)
a setting, a preset or a limit       ``config.TrainConfig`` (its field, ``validate``) and ``config.PRESETS``
what a run is called                 ``labels`` (``arch_text``, ``compare``, ``run_label``)
a lesson                             ``lessons.LESSONS`` and its sentence function, computed from the runs, a test
the class board's score or limits    ``board`` (``FOLDS``, ``METRIC``, ``MAX_ENTRIES``; ranking: ``Board.standings``)
a page                               ``pages/N_Name.py``, calling ``ui.page_setup()`` first
who a visitor is (modes, joining)   ``classroom`` (keys, the class store, rate limits); in the app ``ui.identity``
how a class is served                ``serve.serve_plan`` (address, Host allowlist, TLS, links), ``cli``'s ``serve``
===================================  ==============================================================================

This package never imports streamlit; the dashboard imports it.
"""

from .config import PRESETS, TrainConfig, parse_layers, preset_name
from .data import IMAGE_SHAPE, N_X, Dataset, Split, download_dataset, find_data_dir, load_dataset
from .errors import CatdnnError, ConfigError, DataError, ImageError, ModelFileError
from .images import image_to_input, load_image, prepare_image
from .model import Model
from .model_io import load_model, save_model
from .network import (
    INITS,
    accuracy,
    backward,
    compute_cost,
    forward,
    gradient_check,
    init_params,
    predict,
    predict_proba,
    update,
)
from .sweep import sweep  # catdnn.sweep is the function; the module is catdnn.sweep in sys.modules
from .train import Progress, Trainer, fit

__all__ = [
    "CatdnnError", "ConfigError", "DataError", "ImageError", "ModelFileError",
    "IMAGE_SHAPE", "N_X", "Dataset", "Split", "download_dataset", "find_data_dir", "load_dataset",
    "image_to_input", "load_image", "prepare_image",
    "Model", "load_model", "save_model",
    "INITS", "accuracy", "backward", "compute_cost", "forward", "gradient_check", "init_params",
    "predict", "predict_proba", "update",
    "PRESETS", "TrainConfig", "parse_layers", "preset_name", "Progress", "Trainer", "fit", "sweep",
]

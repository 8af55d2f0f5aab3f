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

Modules: ``data`` (the dataset and the input size), ``network`` (the one copy of the math),
``optim`` (optimisers, learning-rate schedules, mini-batches), ``augment`` (flips and shifts),
``solvers`` (direct and Gram), ``optim`` and ``augment`` (the second course's techniques), ``config``
(TrainConfig, presets, limits), ``train`` (the training loop), ``workers`` (training on a pool of
processes), ``model`` and ``model_io`` (the Model and its files), ``images`` (users' photos),
``photos`` (a folder or zip of photos as a dataset), ``share`` (settings as link parameters),
``probe`` (what the dashboard shows of a model's insides), ``evaluate``, ``diagnose``, ``history`` (the run
history in SQLite), ``sweep`` (many runs on a process pool or a Dask cluster), ``cli``, ``notebook``
(``fit()``'s progress bar, a Model's summary in Jupyter), ``figures`` (the training curves as Plotly
figures, plain dicts), ``serve`` (``catdnn app``: the dashboard from a checkout or the installed copy).

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

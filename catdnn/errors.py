"""The project's own exceptions: every user mistake raises one of these, with a message to act on."""


class CatdnnError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""


class DataError(CatdnnError):
    """The dataset is missing, unreadable, or not the cat/non-cat dataset."""


class ConfigError(CatdnnError, ValueError):
    """A training setting is impossible (bad layer list, learning rate, iterations, seed)."""


class ModelFileError(CatdnnError):
    """A model file is missing, corrupt, or not a catdnn model for this dataset."""


class ImageError(CatdnnError):
    """A user's image cannot be read safely."""

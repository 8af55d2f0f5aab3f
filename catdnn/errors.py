"""The project's own exceptions: every user mistake raises one of these, with a message to act on."""


class CatdnnError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""


class DataError(CatdnnError):
    """The dataset is missing, unreadable, or not the cat/non-cat dataset.

    Besides its message it carries what a user interface needs to say what to do, as fields:

    folder : Path or None
        The folder the dataset was looked for in, or downloaded into.
    missing : tuple of str
        The file names missing from ``folder`` (empty when the files are there but damaged).
    attempts : tuple of str
        One line per download URL tried and why it failed (empty unless a download failed).
    """

    def __init__(self, message: str, *, folder=None, missing=(), attempts=()):
        super().__init__(message)
        self.folder = folder
        self.missing = tuple(missing)
        self.attempts = tuple(attempts)


class ConfigError(CatdnnError, ValueError):
    """A training setting is impossible (bad layer list, learning rate, iterations, seed)."""


class ModelFileError(CatdnnError):
    """A model file is missing, corrupt, or not a catdnn model for this dataset."""


class ImageError(CatdnnError):
    """A user's image cannot be read safely."""

"""The one exception type for bad user input: its message names the file, record or key."""


class InputError(ValueError):
    """Input the user can fix (dataset, model spec, config); raised before anything is written."""

"""What can go wrong in a conversion, each with a message that says what to do."""

# what every message about an unreadable checkpoint file says was expected
EXPECTED_CHECKPOINT = "a PyTorch checkpoint (zip or legacy), a pickle or a safetensors file"


class ConversionError(Exception):
    """Base class: the CLI prints these without a traceback and exits with status 1."""


class UnknownVariantError(ConversionError):
    pass


class CheckpointError(ConversionError):
    """The file is missing, empty, truncated, corrupt, or not a checkpoint."""


class UnsafeCheckpointError(CheckpointError):
    """The file asks to run or import something a checkpoint has no reason to need."""


class ChecksumError(ConversionError):
    pass


class KeyMismatchError(ConversionError):
    """The file's tensors do not fit the family: lists the unexpected and the missing keys."""

    def __init__(self, path, family: str, unexpected: list[str], missing: list[str], hint: str = "") -> None:
        self.unexpected, self.missing = sorted(unexpected), sorted(missing)
        lines = [f"{path} does not match the layout of a {family} checkpoint."]
        if self.unexpected:
            lines.append(f"{len(self.unexpected)} unexpected key(s): {_shorten(self.unexpected)}")
        if self.missing:
            lines.append(f"{len(self.missing)} missing key(s): {_shorten(self.missing)}")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


class ValidationError(ConversionError):
    pass


class OutputExistsError(ConversionError):
    pass


class PushError(ConversionError):
    pass


def _shorten(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")

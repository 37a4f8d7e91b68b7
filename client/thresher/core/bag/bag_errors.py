"""Errors of the bag dataset format.

Every message names the file it is about, so a user can find the damaged or unfinished part.
"""

from thresher.core.errors import ThresherError


class BagError(ThresherError):
    """Base class of every error the bag format raises on purpose."""


class CorruptBagError(BagError):
    """A file's bytes contradict the format: truncated, bit-flipped, or a table that does not add up."""


class ChecksumError(CorruptBagError):
    """A record's bytes do not match the checksum written beside its bag."""


class IncompleteDatasetError(BagError):
    """A dataset (or one of its shards) whose writer never finished: it must not be read as complete."""


class DatasetExistsError(BagError, FileExistsError):
    """A writer was pointed at a place that already holds a dataset or other files."""


class SpecError(BagError, ValueError):
    """A spec with a bad key or type, or a type no encoder or decoder is given for."""


class EncodeError(BagError, ValueError):
    """A value its format cannot encode, e.g. an int wider than 128 bits or an array of objects."""


class DecodeError(BagError, ValueError):
    """A record that its format's decoder rejected."""


class MaskError(BagError, ValueError):
    """A read mask or index that does not fit the spec: an unknown key, a range on a scalar key."""


class ResumeError(BagError):
    """An interrupted sharded write that cannot be resumed as asked (a different spec, a gap)."""


class UnsupportedLocationError(BagError, ValueError):
    """A path whose scheme has no storage registered for it (e.g. ``s3://`` without ``thresher.core.storage``)."""

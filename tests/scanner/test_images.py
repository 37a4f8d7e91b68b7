import io

import pytest
from PIL import Image

from thresher.services.scanner.images import image_size


def _encoded(fmt, size=(37, 21), mode="RGB", **options):
    buffer = io.BytesIO()
    Image.new(mode, size, "red").save(buffer, fmt, **options)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    "fmt, options",
    [
        ("PNG", {}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {}),
        ("TIFF", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("JPEG", {"exif": Image.Exif()}),
    ],
)
def test_reads_the_dimensions_of_common_formats(fmt, options):
    assert image_size(_encoded(fmt, **options)) == (37, 21)


def test_jpeg_with_large_metadata_segments_before_the_frame():
    comment = b"c" * 60_000
    buffer = _encoded("JPEG", size=(640, 480), comment=comment)
    assert image_size(buffer) == (640, 480)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00"])
def test_non_images_and_truncated_headers_have_no_size(data):
    assert image_size(io.BytesIO(data)) is None

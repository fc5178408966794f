"""Reading user images robustly: every input becomes an RGB uint8 array or a clear :class:`ImageInputError`.

Handled: paths, bytes, PIL images and arrays; EXIF orientation (rotated first); 16-bit PNGs (scaled to 8 bit);
CMYK, palette, LA and grayscale images (to RGB); RGBA (composited on white); animated GIF / WebP (first frame);
truncated files and non-images (refused, saying so); decompression bombs (refused above ``MAX_PIXELS`` before
any pixel is decoded).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # 40 MP: larger images are refused before decoding
MIN_SIDE = 16


class ImageInputError(ValueError):
    """An input that is not a usable image; the message is meant for the user."""


def gray_to_rgb(a: np.ndarray) -> np.ndarray:
    """``H x W`` (or ``H x W x 1``) -> ``H x W x 3`` by repeating the channel; RGB passes through."""
    if a.ndim == 3 and a.shape[2] == 3:
        return a
    return np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, -1)


def _from_pil(im: Image.Image) -> np.ndarray:
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise ImageInputError(f"image is {w}x{h} = {w * h / 1e6:.0f} MP; the limit is {MAX_PIXELS / 1e6:.0f} MP")
    if getattr(im, "is_animated", False):
        im.seek(0)
    try:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            a = np.asarray(im, dtype=np.float64)
            top = 65535.0 if a.max() > 255 else 255.0
            return gray_to_rgb((np.clip(a / top, 0, 1) * 255 + 0.5).astype(np.uint8))
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, rgba)
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as e:  # truncated data surfaces when pixels are decoded
        raise ImageInputError(f"the image file is damaged or truncated ({e})") from None
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise ImageInputError(f"image is {rgb.shape[1]}x{rgb.shape[0]} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    return np.ascontiguousarray(rgb)


def load_image(src) -> np.ndarray:
    """An RGB uint8 ``H x W x 3`` array from a path, bytes, a PIL image or an array."""
    if src is None:
        raise ImageInputError("no image given")
    if isinstance(src, np.ndarray):
        a = src
        if a.size == 0:
            raise ImageInputError("empty image")
        if a.dtype == np.uint16:
            a = (a / 257).astype(np.uint8)
        elif a.dtype != np.uint8:
            a = np.clip(a if a.max() > 1.0 else a * 255, 0, 255).astype(np.uint8)
        if a.ndim == 2:
            a = gray_to_rgb(a)
        if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
            raise ImageInputError(f"array of shape {a.shape} is not an image")
        if a.shape[2] == 4:
            alpha = a[..., 3:4].astype(np.float32) / 255
            a = (a[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
        elif a.shape[2] == 1:
            a = gray_to_rgb(a)
        return _from_pil(Image.fromarray(np.ascontiguousarray(a)))
    if isinstance(src, Image.Image):
        return _from_pil(src)
    if isinstance(src, (str, Path)):
        p = Path(src)
        if not p.is_file():
            raise ImageInputError(f"{p.name}: no such file")
        if p.stat().st_size == 0:
            raise ImageInputError(f"{p.name}: the file is empty (0 bytes)")
        data = p.read_bytes()
    elif isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        if not data:
            raise ImageInputError("the file is empty (0 bytes)")
    else:
        raise ImageInputError(f"cannot read an image from {type(src).__name__}")
    try:
        im = Image.open(io.BytesIO(data))
        im.size  # noqa: B018  (the header is parsed; no pixels yet)
    except UnidentifiedImageError:
        raise ImageInputError("this file is not an image PIL can read (PNG, JPEG, GIF, WebP, BMP, TIFF ...)") from None
    except Image.DecompressionBombError as e:
        raise ImageInputError(f"image refused: {e}") from None
    return _from_pil(im)

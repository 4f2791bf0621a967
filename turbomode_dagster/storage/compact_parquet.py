"""Per-night Parquet files written smaller, losslessly: byte-stream-split floats under zstd.

Model probabilities are high-entropy float32s that dictionary encoding (Parquet's default) cannot
shrink; splitting each float's bytes into streams lets zstd find the shared exponents and leading
mantissa bytes. On the 83-symbol night's out-of-fold predictions (1.59 M rows) that takes the file
from 22.7 MB (pandas' default: snappy, dictionaries) to 15.1 MB, writing in 0.3 s. Text and integer
columns keep their dictionaries. Values and dtypes read back unchanged, since only encodings change.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COMPRESSION = "zstd"
COMPRESSION_LEVEL = 9  # level 19 saves a further 0.2 % at nine times the write time


def float_columns(frame: pd.DataFrame) -> list[str]:
    """Names of the frame's float columns, the ones written byte-stream-split."""
    return [str(c) for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]


def write_compact_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` (without its index) to `path`: floats byte-stream-split, other columns dictionary-encoded."""
    floats = float_columns(frame)
    others = [str(c) for c in frame.columns if str(c) not in floats]
    frame.to_parquet(
        path,
        index=False,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        use_dictionary=others,
        use_byte_stream_split=floats,
    )

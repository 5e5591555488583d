"""Deep Compression's stages 2 and 3 after pruning (Han, Mao & Dally, ICLR 2016): weight sharing
by k-means, trained quantization, Huffman coding, and the file that holds the result.

    weight_sharing.py        Codebook, kmeans, linear_centroids, share_weights (Sec. 3)
    trained_quantization.py  CentroidSGD, retrain_quantized: centroids move by Eq. 3 (Sec. 3)
    huffman.py               code_lengths, encode, decode, entropy_bits (Sec. 4)
    relative_index.py        encode_steps, decode_steps, best_index_bits (Sec. 2, Fig. 2)
    file_format.py           save_compressed, read_compressed (checksummed, atomic, checked)
    search.py                bits per layer chosen on a validation split (their Fig. 6, 7)
    figures.py               their Fig. 3 (sharing), bits per layer, size against error

Pruning (stage 1) is `minprune.prune`; a compressed file loads as a pruned ``Sequential`` that
`minprune.inference.compile_model` runs.
"""

from minprune.compress import figures, search
from minprune.compress.file_format import (
    CompressedFile,
    CompressedFileError,
    read_compressed,
    save_compressed,
)
from minprune.compress.huffman import code_lengths, decode, encode, entropy_bits
from minprune.compress.relative_index import best_index_bits, decode_steps, encode_steps
from minprune.compress.trained_quantization import (
    CentroidSGD,
    centroid_gradients,
    retrain_quantized,
)
from minprune.compress.weight_sharing import (
    Codebook,
    apply_codebooks,
    kmeans,
    linear_centroids,
    nearest_centroid,
    share_weights,
)

__all__ = [
    "figures",
    "search",
    "Codebook",
    "kmeans",
    "linear_centroids",
    "nearest_centroid",
    "share_weights",
    "apply_codebooks",
    "CentroidSGD",
    "centroid_gradients",
    "retrain_quantized",
    "code_lengths",
    "encode",
    "decode",
    "entropy_bits",
    "encode_steps",
    "decode_steps",
    "best_index_bits",
    "save_compressed",
    "read_compressed",
    "CompressedFile",
    "CompressedFileError",
]

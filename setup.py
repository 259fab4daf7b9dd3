"""RevivaColor: colorize whole archives of black-and-white photographs with Apache Beam."""

from setuptools import find_packages, setup

JAX = "jax>=0.10,<1"  # Keras's JAX backend (KERAS_BACKEND=jax); on a GPU, "jax[cuda12]" instead

setup(
    name="revivacolor",
    version="0.1.0",
    description="Batch colorization of monochrome photo archives (Apache Beam + TensorFlow)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.14",
    packages=find_packages(
        include=["pipeline", "pipeline.*", "models", "models.*", "transforms", "transforms.*", "studio", "studio.*"]
    ),
    package_data={
        "models": ["bundled/*.keras", "bundled/*.json", "bundled/*.csv"],
        "transforms": ["profiles/*.icc", "profiles/README.md"],
        "studio": ["static/*"],
    },
    install_requires=[
        "apache-beam[gcp]==2.77.0",
        "tensorflow==2.21.0",
        "opencv-python-headless>=4.8,<5",
        "numpy>=1.26,<3",
        "pyarrow>=14",
        "pillow>=10",
        "scipy>=1.11",  # the sparse solver that spreads known colors (transforms/hints.py)
        "google-cloud-storage>=2.14",
        "exiv2>=0.17,<0.20",  # python-exiv2: EXIF, IPTC and XMP carried into the outputs (pipeline/archival.py)
        "c2pa-python>=0.38,<0.39",  # Content Credentials, with --c2pa_cert and --c2pa_key
        "starlette>=1.0,<2",  # the hint studio's web app (studio/)
        "uvicorn>=0.30,<1",
    ],
    extras_require={
        "jax": [JAX],
        "test": ["pytest>=8", "ruff>=0.6", "gcp-storage-emulator==2026.7.19", JAX, "httpx2>=2", "selenium>=4.20,<5"],
    },
    entry_points={"console_scripts": ["revivacolor=studio.command:main"]},
)

"""The real-data loaders on small files in the original formats, written here by hand: IDX files
(gzip-compressed), CIFAR-10 python batches and a CIFAR-style archive. Nothing is downloaded: the
network function is replaced."""

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import urllib.error

import numpy as np
import pytest

from layerkit.data import downloads as dl


def write_idx(path, array, type_code=0x08):
    """The IDX layout written out independently of read_idx: 0, 0, type, rank, big-endian
    uint32 sizes, big-endian values."""
    big = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[type_code]
    body = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    body += b"".join(struct.pack(">I", s) for s in array.shape)
    body += array.astype(big).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(body)


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def no_network(url, timeout=None):
    raise urllib.error.URLError("no network (test)")


@pytest.fixture
def offline(monkeypatch):
    calls = []

    def refuse(url, timeout=None):
        calls.append(url)
        no_network(url)
    monkeypatch.setattr(dl, "urlopen", refuse)
    return calls


def test_read_idx_reads_each_type_and_rank(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    got = dl.read_idx(tmp_path / "a.gz")
    assert got.dtype == np.uint8 and got.shape == (2, 3, 4) and np.array_equal(got, a)
    b = np.array([-2, 300, 7], dtype=np.int16)
    write_idx(tmp_path / "b", b, 0x0B)
    assert dl.read_idx(tmp_path / "b").tolist() == [-2, 300, 7]
    c = np.array([[0.5, -1.25]], dtype=np.float32)
    write_idx(tmp_path / "c", c, 0x0D)
    assert dl.read_idx(tmp_path / "c").tolist() == [[0.5, -1.25]]


def test_read_idx_rejects_bad_headers_and_sizes(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="expected an IDX file"):
        dl.read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((3, 2), np.uint8))
    data = (tmp_path / "short").read_bytes()
    (tmp_path / "short").write_bytes(data[:-1])
    with pytest.raises(ValueError, match=r"expected 6 bytes of data for shape \(3, 2\), got 5"):
        dl.read_idx(tmp_path / "short")


def mnist_like(folder, remotes, n_train=5, n_test=3, seed=0):
    """Four small IDX files under the published names; returns the arrays and Remotes whose
    checksums are those of the written files."""
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              rng.integers(0, 10, n_train, dtype=np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              rng.integers(0, 10, n_test, dtype=np.uint8)]
    folder.mkdir(parents=True, exist_ok=True)
    mine = []
    for r, a in zip(remotes, arrays):
        write_idx(folder / r.filename, a)
        mine.append(dl.Remote(r.filename, r.url, md5(folder / r.filename)))
    return arrays, tuple(mine)


def test_load_mnist_parses_a_cached_copy(tmp_path, monkeypatch, offline):
    arrays, remotes = mnist_like(tmp_path / "mnist", dl.MNIST_FILES)
    monkeypatch.setattr(dl, "MNIST_FILES", remotes)
    split = dl.load_mnist(root=tmp_path)
    assert offline == []                              # cached: the network is not asked
    assert split.x_train.shape == (5, 1, 28, 28) and split.x_test.shape == (3, 1, 28, 28)
    assert split.x_train.dtype == np.float32
    assert np.array_equal(split.x_train[:, 0] * 255, arrays[0].astype(np.float32))
    assert split.y_train.dtype == np.int64 and split.y_train.tolist() == arrays[1].tolist()
    assert split.y_test.tolist() == arrays[3].tolist()
    flat = dl.load_mnist(root=tmp_path, flatten=True, dtype=np.float64)
    assert flat.x_test.shape == (3, 784) and flat.x_test.dtype == np.float64


def test_a_file_with_another_checksum_is_refused(tmp_path, offline):
    """The small file is not the published one: its MD5 does not match the published value."""
    mnist_like(tmp_path / "mnist", dl.MNIST_FILES)
    with pytest.raises(dl.ChecksumError, match="checksum mismatch for .*train-images-idx3-ubyte"
                       r".gz: expected MD5 f68b3c2dcbeaaa9fbdd348bbdeb94873 \(the published"):
        dl.load_mnist(root=tmp_path)


def test_offline_message_names_path_file_and_url(tmp_path, offline):
    with pytest.raises(dl.NotCachedError) as err:
        dl.load_mnist(root=tmp_path, progress=False)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    assert (f"no network and no cached copy at {path}: download train-images-idx3-ubyte.gz "
            f"from {dl.MNIST_FILES[0].url} and place it there") in str(err.value)
    assert offline == [dl.MNIST_FILES[0].url]
    assert not path.exists() and not path.with_name(path.name + ".part").exists()
    with pytest.raises(dl.NotCachedError, match="download=False"):
        dl.load_cifar10(root=tmp_path, download=False)
    assert len(offline) == 1                          # download=False: no network call


class FakeResponse(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_is_verified_then_cached(tmp_path, monkeypatch, capsys):
    source = tmp_path / "source"
    arrays, remotes = mnist_like(source, dl.FASHION_MNIST_FILES)
    served = {r.url: (source / r.filename).read_bytes() for r in remotes}
    calls = []

    def serve(url, timeout=None):
        calls.append(url)
        return FakeResponse(served[url])
    monkeypatch.setattr(dl, "urlopen", serve)
    monkeypatch.setattr(dl, "FASHION_MNIST_FILES", remotes)
    monkeypatch.setattr(dl, "DEBIAN_FASHION_MNIST", (tmp_path / "none", tmp_path / "none.txt"))
    cache = tmp_path / "cache"
    split = dl.load_fashion_mnist(root=cache)
    assert len(calls) == 4 and split.y_test.tolist() == arrays[3].tolist()
    assert sorted(p.name for p in (cache / "fashion-mnist").iterdir()) == sorted(
        r.filename for r in remotes)                  # no .part file left behind
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err     # a progress bar
    dl.load_fashion_mnist(root=cache, progress=False)
    assert len(calls) == 4                            # second time: from the cache

    corrupt = dl.Remote("x.gz", "https://example.invalid/x.gz", "0" * 32)
    served[corrupt.url] = b"not the file"
    with pytest.raises(dl.ChecksumError, match="expected MD5 0{32}"):
        dl.fetch(corrupt, cache / "other", progress=False)
    assert list((cache / "other").iterdir()) == []    # the bad download is not kept


def test_cache_dir_argument_then_environment_then_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(dl.CACHE_ENV, raising=False)
    assert dl.cache_dir() == tmp_path / "xdg" / "layerkit"
    monkeypatch.setenv(dl.CACHE_ENV, str(tmp_path / "env"))
    assert dl.cache_dir() == tmp_path / "env"
    assert dl.cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_debian_copy_is_checked_against_the_package_md5_list(tmp_path, monkeypatch, offline):
    folder = tmp_path / "usr/share/datasets/fashion-mnist"
    arrays, remotes = mnist_like(folder, dl.FASHION_MNIST_FILES, seed=3)
    sums = tmp_path / "md5sums"
    lines = [f"{r.md5}  {str(folder / r.filename).lstrip('/')}" for r in remotes]
    sums.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(dl, "DEBIAN_FASHION_MNIST", (folder, sums))
    split = dl.load_fashion_mnist(root=tmp_path / "empty-cache")
    assert offline == [] and split.y_train.tolist() == arrays[1].tolist()
    sums.write_text("\n".join(["0" * 32 + l[32:] for l in lines]) + "\n")
    with pytest.raises(dl.ChecksumError, match="Debian"):
        dl.load_fashion_mnist(root=tmp_path / "empty-cache")


def cifar_batch(path, n, seed):
    """A batch as CIFAR-10's python files are: a protocol-2 pickle of a dict with bytes keys."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"testing batch", b"labels": labels, b"data": data,
                     b"filenames": [b"x.png"] * n}, f, protocol=2)
    return data, labels


def test_read_cifar_batch_layout(tmp_path):
    data, labels = cifar_batch(tmp_path / "b", 4, 0)
    x, y = dl.read_cifar_batch(tmp_path / "b")
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.uint8 and y.tolist() == labels
    # pixel (row 2, column 5) of the green plane is value 1024 + 2*32 + 5 of the row
    assert x[1, 1, 2, 5] == data[1, 1024 + 2 * 32 + 5]


def test_read_cifar_batch_executes_nothing(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    (tmp_path / "evil").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (__builtin__|builtins)\.print"):
        dl.read_cifar_batch(tmp_path / "evil")


def test_load_cifar10_from_an_archive(tmp_path, monkeypatch, offline):
    staging = tmp_path / "staging" / "cifar-10-batches-py"
    staging.mkdir(parents=True)
    written, sums = {}, {}
    for i, name in enumerate(dl.CIFAR10_BATCHES):
        written[name] = cifar_batch(staging / name, 2 + i, i)
        sums[name] = md5(staging / name)
    folder = tmp_path / "cache" / "cifar-10"
    folder.mkdir(parents=True)
    archive = folder / dl.CIFAR10_ARCHIVE.filename
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging, arcname="cifar-10-batches-py")
    monkeypatch.setattr(dl, "CIFAR10_ARCHIVE", dl.Remote(archive.name, "https://x/a", md5(archive)))
    monkeypatch.setattr(dl, "CIFAR10_BATCHES", sums)
    split = dl.load_cifar10(root=tmp_path / "cache")
    assert split.x_train.shape == (2 + 3 + 4 + 5 + 6, 3, 32, 32)
    assert split.x_test.shape == (7, 3, 32, 32) and split.y_test.tolist() == written["test_batch"][1]
    first = written["data_batch_1"][0][0]
    assert np.array_equal(split.x_train[0].reshape(-1) * 255, first.astype(np.float32))
    # a batch changed after unpacking is refused by its checksum
    batch = folder / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-1] + b"\x00")
    with pytest.raises(dl.ChecksumError, match="data_batch_3"):
        dl.load_cifar10(root=tmp_path / "cache")

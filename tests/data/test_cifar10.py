import pickle

import numpy as np
import pytest
import torch

from nasbench.data import builtin_path
from nasbench.data.cifar10 import ImageStream, augment, load_cifar10, normalize
from nasbench.errors import UserError


def test_shared_slice_loads_with_its_documented_sizes(shared_data):
    images, labels = load_cifar10(shared_data / "cifar10-mini", "train")
    assert images.shape == (5085, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.shape == (5085,) and int(labels.min()) == 0 and int(labels.max()) == 9
    test_images, _ = load_cifar10(shared_data / "cifar10-mini" / "cifar-10-batches-py", "test")
    assert test_images.shape == (1017, 3, 32, 32)


def test_builtin_slice_is_the_shared_one(shared_data):
    a, la = load_cifar10(builtin_path("cifar10-mini"))
    b, lb = load_cifar10(shared_data / "cifar10-mini")
    assert torch.equal(a, b) and torch.equal(la, lb)


def test_pixel_layout_is_rgb_planes(tmp_path):
    # one image whose red plane is 10, green 20, blue 30
    row = np.concatenate([np.full(1024, v, dtype=np.uint8) for v in (10, 20, 30)])
    write_batches(tmp_path, np.stack([row]), [3])
    images, labels = load_cifar10(tmp_path)
    assert images[0, :, 5, 7].tolist() == [10, 20, 30] and labels.tolist() == [3] * 5


def write_batches(folder, data, labels):
    for i in range(1, 6):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"data": data, "labels": list(labels)}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": data, "labels": list(labels)}, f)


def test_missing_folder_says_what_was_expected(tmp_path):
    with pytest.raises(UserError, match="data_batch_1..5.*--download"):
        load_cifar10(tmp_path / "nowhere")


def test_damaged_batch_is_named(tmp_path):
    write_batches(tmp_path, np.zeros((2, 3072), dtype=np.uint8), [0, 1])
    (tmp_path / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(UserError, match="data_batch_3 is damaged"):
        load_cifar10(tmp_path)


def test_wrong_shape_and_labels_are_refused(tmp_path):
    write_batches(tmp_path, np.zeros((2, 100), dtype=np.uint8), [0, 1])
    with pytest.raises(UserError, match="expected \\(N, 3072\\)"):
        load_cifar10(tmp_path)
    write_batches(tmp_path, np.zeros((2, 3072), dtype=np.uint8), [0, 12])
    with pytest.raises(UserError, match="labels outside 0..9"):
        load_cifar10(tmp_path)


def test_augment_is_a_padded_crop_or_its_mirror():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = augment(images, gen)
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    flipped = 0
    for i in range(len(images)):
        windows = [padded[i, :, y : y + 32, x : x + 32] for y in range(9) for x in range(9)]
        plain = any(torch.equal(out[i], w) for w in windows)
        mirrored = any(torch.equal(out[i], w.flip(2)) for w in windows)
        assert plain or mirrored
        flipped += mirrored and not plain
    assert 10 < flipped < 54  # about half are flipped


def test_normalize_uses_the_cifar_statistics():
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = normalize(x)
    assert torch.allclose(
        out[0, :, 0, 0], torch.tensor([(1 - 0.4914) / 0.2470, (1 - 0.4822) / 0.2435, (1 - 0.4465) / 0.2616]), atol=1e-3
    )


def test_stream_order_depends_on_seed_and_epoch_only():
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 3, 32, 32).contiguous()
    labels = torch.arange(40) % 10
    a = ImageStream(images, labels, 8, seed=1, stream=0, train=True)
    b = ImageStream(images, labels, 8, seed=1, stream=0, train=True)
    first = [y for _, y in a.epoch(3)]
    assert len(first) == len(a) == 5
    assert all(torch.equal(p, q) for p, q in zip(first, [y for _, y in b.epoch(3)]))
    assert not all(torch.equal(p, q) for p, q in zip(first, [y for _, y in a.epoch(4)]))
    scored = ImageStream(images[:10], labels[:10], 4, seed=1, stream=2, train=False)
    assert [len(y) for _, y in scored.epoch(0)] == [4, 4, 2]  # scoring keeps every image, in order


def test_channels_last_stream_gives_the_same_batches_in_nhwc_memory():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(16) % 10
    nchw = ImageStream(images, labels, 8, seed=1, stream=0, train=True)
    nhwc = ImageStream(images, labels, 8, seed=1, stream=0, train=True, channels_last=True)
    for (a, ya), (b, yb) in zip(nchw.epoch(0), nhwc.epoch(0)):
        assert torch.equal(a, b) and torch.equal(ya, yb)
        assert b.is_contiguous(memory_format=torch.channels_last) and not a.is_contiguous(
            memory_format=torch.channels_last
        )

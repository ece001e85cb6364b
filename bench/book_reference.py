#!/usr/bin/python3
"""The book's pipeline in Python, as the reference torchcap is measured against.

Run with /usr/bin/python3 (Debian's python3-torch and python3-torchvision: the libtorch torchcap
links). The code follows the book's chapter (see docs: BOOK_SPEC.md): CNNModel and LSTMModel, the
dataset with PIL and torchvision transforms, the collate function, a DataLoader with 2 workers,
Adam over the decoder and the encoder's linear and batch-norm layers, greedy sampling.

Usage: book_reference.py TASK DATA_DIR [options as JSON]; prints one JSON object.
Tasks: train-step, decoder-step, epoch, caption, sample, data, forward.
"""
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as transforms
from PIL import Image
from torch.nn.utils.rnn import pack_padded_sequence

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts', 'fixtures'))
from book_models import CNNModel, LSTMModel, book_params  # noqa: E402  (the book's models, one definition)

THREADS = int(os.environ.get('THREADS', str(os.cpu_count())))
torch.set_num_threads(THREADS)
torch.manual_seed(0)


NORMALIZE = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
TRAIN_TRANSFORM = transforms.Compose([transforms.RandomCrop(224), transforms.RandomHorizontalFlip(), transforms.ToTensor(), NORMALIZE])


class CocoDataset(torch.utils.data.Dataset):
    """The book's dataset, over a list of (image file, caption ids)."""

    def __init__(self, samples, transform):
        self.samples = samples
        self.transform = transform

    def __getitem__(self, idx):
        path, ids = self.samples[idx]
        image = Image.open(path).convert('RGB')
        return self.transform(image), torch.Tensor(ids)

    def __len__(self):
        return len(self.samples)


def collate_function(data_batch):
    data_batch.sort(key=lambda d: len(d[1]), reverse=True)
    imgs, caps = zip(*data_batch)
    imgs = torch.stack(imgs, 0)
    cap_lens = [len(cap) for cap in caps]
    tgts = torch.zeros(len(caps), max(cap_lens)).long()
    for i, cap in enumerate(caps):
        tgts[i, :cap_lens[i]] = cap[:cap_lens[i]]
    return imgs, tgts, cap_lens


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def models(vocab, depth=152):
    encoder = CNNModel(256, depth)
    decoder = LSTMModel(256, 512, vocab, 1)
    return encoder, decoder, torch.optim.Adam(book_params(encoder, decoder), lr=0.001)


def book_step(encoder, decoder, optimizer, imgs, caps, lens, device=None):
    criterion = nn.CrossEntropyLoss()
    if device is not None:  # the book's loop moves each batch to the model's device
        imgs, caps = imgs.to(device), caps.to(device)
    tgts = pack_padded_sequence(caps, lens, batch_first=True)[0]
    feats = encoder(imgs)
    outputs = decoder(feats, caps, lens)
    loss = criterion(outputs, tgts)
    decoder.zero_grad()
    encoder.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def random_batch(batch, vocab, gen):
    imgs = torch.randn(batch, 3, 224, 224, generator=gen)
    lens = sorted([int(x) for x in torch.randint(8, 22, (batch,), generator=gen)], reverse=True)
    caps = torch.randint(4, vocab, (batch, lens[0]), generator=gen)
    return imgs, caps, lens


def task_train_step(data, opts):
    """Seconds per step of the book's training step (ResNet-152 at 224, the book's mode); with
    `device` (e.g. 'cuda') the models there and each batch moved there inside the step, and the
    median of the steps after two warm-up steps."""
    device = opts.get('device')
    encoder, decoder, _ = models(opts['vocab'])
    if device is not None:
        encoder, decoder = encoder.to(device), decoder.to(device)
    optimizer = torch.optim.Adam(book_params(encoder, decoder), lr=0.001)
    encoder.train()
    decoder.train()
    gen = torch.Generator().manual_seed(0)
    # one batch alive at a time, as a loader hands them out; making it is not timed
    for _ in range(1 if device is None else 2):
        book_step(encoder, decoder, optimizer, *random_batch(opts['batch'], opts['vocab'], gen), device)
    times = []
    for _ in range(opts['steps']):
        b = random_batch(opts['batch'], opts['vocab'], gen)
        t = time.perf_counter()
        book_step(encoder, decoder, optimizer, *b, device)  # ends with loss.item(): waits for the GPU
        times.append(time.perf_counter() - t)
        del b
    if device is not None:
        return {'seconds_per_step': statistics.median(times), 'peak_rss_mb': peak_rss_mb()}
    return {'seconds_per_step': sum(times) / opts['steps'], 'peak_rss_mb': peak_rss_mb()}


def task_decoder_step(data, opts):
    """Seconds per step of the book's step after the encoder: book_step with the features given
    (the LSTM decoder, the loss, backward and Adam over the decoder: the part on the BLAS)."""
    decoder = LSTMModel(256, 512, opts['vocab'], 1)
    decoder.train()
    optimizer = torch.optim.Adam(decoder.parameters(), lr=0.001)
    gen = torch.Generator().manual_seed(0)

    def step():
        feats = torch.randn(opts['batch'], 256, generator=gen)
        lens = sorted([int(x) for x in torch.randint(8, 22, (opts['batch'],), generator=gen)], reverse=True)
        caps = torch.randint(4, opts['vocab'], (opts['batch'], lens[0]), generator=gen)
        t = time.perf_counter()
        book_step(nn.Identity(), decoder, optimizer, feats, caps, lens)
        return time.perf_counter() - t

    for _ in range(opts['warmup']):
        step()
    return {'seconds_per_step': sum(step() for _ in range(opts['steps'])) / opts['steps']}


def load_samples(data):
    with open(os.path.join(data, 'samples.json')) as f:
        return [(os.path.join(data, 'images', s['image']), s['ids']) for s in json.load(f)['samples']]


def task_epoch(data, opts):
    """Seconds for one epoch of the book's training over the bench data (DataLoader, 2 workers)."""
    samples = load_samples(data)[: opts['samples']]
    encoder, decoder, optimizer = models(opts['vocab'])
    encoder.train()
    decoder.train()
    loader = torch.utils.data.DataLoader(CocoDataset(samples, TRAIN_TRANSFORM), batch_size=opts['batch'], shuffle=True, num_workers=2, collate_fn=collate_function)
    t = time.perf_counter()
    steps = 0
    for imgs, caps, lens in loader:
        book_step(encoder, decoder, optimizer, imgs, caps, lens)
        steps += 1
    return {'seconds': time.perf_counter() - t, 'steps': steps, 'samples': len(samples)}


def task_data(data, opts):
    """Images per second through the book's DataLoader (decode, crop, flip, normalize, collate)."""
    samples = load_samples(data)[: opts['samples']]
    loader = torch.utils.data.DataLoader(CocoDataset(samples, TRAIN_TRANSFORM), batch_size=opts['batch'], shuffle=True, num_workers=2, collate_fn=collate_function)
    it = iter(loader)
    next(it)  # workers started and warm
    t = time.perf_counter()
    n = 0
    for imgs, _, _ in it:
        n += imgs.shape[0]
    return {'images_per_second': n / (time.perf_counter() - t), 'images': n}


def load_image(path):
    image = Image.open(path).convert('RGB').resize([224, 224], Image.LANCZOS)
    return NORMALIZE(transforms.ToTensor()(image)).unsqueeze(0)


def task_caption(data, opts):
    """Latency of captioning one image end to end (load, resize, encode, greedy 20 steps)."""
    files = [p for p, _ in load_samples(data)][: opts['images']]
    encoder = CNNModel(256, 152)
    decoder = LSTMModel(256, 512, opts['vocab'], 1)
    encoder.eval()
    decoder.eval()

    def caption(path):
        with torch.no_grad():
            return decoder.sample(encoder(load_image(path)))[0].tolist()

    caption(files[0])
    times = []
    for f in files:
        t = time.perf_counter()
        caption(f)
        times.append(time.perf_counter() - t)
    times.sort()
    # The same 16 as one batch (load, resize, one encoder forward, one sample): warm, then the median of 3
    def caption_batch(paths):
        with torch.no_grad():
            return decoder.sample(encoder(torch.cat([load_image(p) for p in paths])))

    batch = files[:16]
    caption_batch(batch)
    batches = []
    for _ in range(3):
        t = time.perf_counter()
        caption_batch(batch)
        batches.append(time.perf_counter() - t)
    batches.sort()
    return {'median_seconds': times[len(times) // 2], 'all_seconds': sum(times), 'batch16_seconds': batches[1], 'images': len(files)}


def task_sample(data, opts):
    """The book's greedy decoder.sample for one image's features (20 steps), seconds, median of opts['reps']."""
    decoder = LSTMModel(256, 512, opts['vocab'], 1).eval()
    features = torch.randn(1, 256)
    times = []
    with torch.no_grad():
        decoder.sample(features)
        for _ in range(opts['reps']):
            t = time.perf_counter()
            decoder.sample(features)
            times.append(time.perf_counter() - t)
    times.sort()
    return {'sample_seconds': times[len(times) // 2]}


def task_forward(data, opts):
    """ResNet-152 eval forward at 224 (batch B), seconds a forward."""
    resnet = torchvision.models.resnet152().eval()
    x = torch.randn(opts['batch'], 3, 224, 224)
    out = {}
    with torch.no_grad():
        resnet(x)
        t = time.perf_counter()
        for _ in range(opts['reps']):
            resnet(x)
        out['forward_seconds'] = (time.perf_counter() - t) / opts['reps']
    return out


if __name__ == '__main__':
    task, data = sys.argv[1], sys.argv[2]
    opts = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    result = globals()['task_' + task.replace('-', '_')](data, opts)
    print(json.dumps(result))

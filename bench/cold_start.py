#!/usr/bin/python3
"""The book's cold start: a fresh process that captions one photo with a ResNet-152 checkpoint.

    cold_start.py make OUT            write OUT/encoder.ckpt, decoder.ckpt, vocabulary.pkl (the book's
                                      formats; ResNet-152, embed 256, hidden 512, 9,948 words; random weights)
    cold_start.py caption OUT IMAGE   the book's inference: imports, models, torch.load, one caption

`caption` prints one JSON object: the caption and the seconds each phase took, from the first line
of this script; the caller times the whole process from its start. It computes on every core, as
torchcap and the bench's other Python scripts do.
"""
import time

T0 = time.perf_counter()
import json  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import torchvision  # noqa: E402,F401
from PIL import Image  # noqa: E402
from torchvision import transforms  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts', 'fixtures'))
from book_models import CNNModel, LSTMModel, Vocab, caption_words  # noqa: E402

T_IMPORT = time.perf_counter()
EMBED, HIDDEN, VOCAB = 256, 512, 9948
Vocab.__module__ = '__main__'  # the book's notebook defines it there, and so names it in the pickle


def make(out):
    torch.manual_seed(0)
    vocab = Vocab()
    for w in ['<pad>', '<start>', '<end>', '<unk>'] + [f'w{i}' for i in range(VOCAB - 4)]:
        vocab.add_token(w)
    os.makedirs(out, exist_ok=True)
    torch.save(CNNModel(EMBED, 152).state_dict(), os.path.join(out, 'encoder.ckpt'))
    torch.save(LSTMModel(EMBED, HIDDEN, len(vocab), 1).state_dict(), os.path.join(out, 'decoder.ckpt'))
    with open(os.path.join(out, 'vocabulary.pkl'), 'wb') as f:
        pickle.dump(vocab, f)
    print(json.dumps({'dir': out}))


def caption(out, image_file):
    # every core, as torchcap uses (PyTorch's own default can be fewer: one on a 2-CPU machine here)
    torch.set_num_threads(os.cpu_count())
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    with open(os.path.join(out, 'vocabulary.pkl'), 'rb') as f:
        vocab = pickle.load(f)
    encoder = CNNModel(EMBED, 152).eval()
    decoder = LSTMModel(EMBED, HIDDEN, len(vocab), 1)
    t_model = time.perf_counter()
    enc_state = torch.load(os.path.join(out, 'encoder.ckpt'))
    dec_state = torch.load(os.path.join(out, 'decoder.ckpt'))
    t_load = time.perf_counter()
    encoder.load_state_dict(enc_state)
    decoder.load_state_dict(dec_state)
    t_state = time.perf_counter()
    img = Image.open(image_file).convert('RGB').resize([224, 224], Image.LANCZOS)
    with torch.no_grad():
        ids = decoder.sample(encoder(transform(img).unsqueeze(0)))[0].tolist()
    words = caption_words(vocab, ids)
    t_end = time.perf_counter()
    print(json.dumps({
        'caption': words,
        'import_seconds': T_IMPORT - T0,
        'model_seconds': t_model - T_IMPORT,
        'torch_load_seconds': t_load - t_model,
        'load_state_dict_seconds': t_state - t_load,
        'caption_seconds': t_end - t_state,
        'in_process_seconds': t_end - T0,
    }))


if __name__ == '__main__':
    if sys.argv[1] == 'make':
        make(sys.argv[2])
    elif sys.argv[1] == 'caption':
        caption(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f'unknown task {sys.argv[1]}')

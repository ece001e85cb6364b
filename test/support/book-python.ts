/**
 * The book's two models and its vocabulary class in Python, as its notebook defines them (with
 * LSTMModel.forward using its argument, not the notebook's global), for tests that exchange files
 * with PyTorch. Same definitions as scripts/fixtures/make-model-fixtures.py.
 */
export const BOOK_MODELS_PY = `
import torch
import torch.nn as nn
import torchvision
from torch.nn.utils.rnn import pack_padded_sequence


class CNNModel(nn.Module):
    def __init__(self, embedding_size, depth=18):
        super().__init__()
        resnet = getattr(torchvision.models, f'resnet{depth}')()
        module_list = list(resnet.children())[:-1]
        self.resnet_module = nn.Sequential(*module_list)
        self.linear_layer = nn.Linear(resnet.fc.in_features, embedding_size)
        self.batch_norm = nn.BatchNorm1d(embedding_size, momentum=0.01)

    def forward(self, input_images):
        with torch.no_grad():
            resnet_features = self.resnet_module(input_images)
        resnet_features = resnet_features.reshape(resnet_features.size(0), -1)
        return self.batch_norm(self.linear_layer(resnet_features))


class LSTMModel(nn.Module):
    def __init__(self, embedding_size, hidden_layer_size, vocabulary_size, num_layers, max_seq_len=20):
        super().__init__()
        self.embedding_layer = nn.Embedding(vocabulary_size, embedding_size)
        self.lstm_layer = nn.LSTM(embedding_size, hidden_layer_size, num_layers, batch_first=True)
        self.linear_layer = nn.Linear(hidden_layer_size, vocabulary_size)
        self.max_seq_len = max_seq_len

    def forward(self, input_features, capts, lens):
        embeddings = self.embedding_layer(capts)
        embeddings = torch.cat((input_features.unsqueeze(1), embeddings), 1)
        lstm_input = pack_padded_sequence(embeddings, lens, batch_first=True)
        hidden_variables, _ = self.lstm_layer(lstm_input)
        return self.linear_layer(hidden_variables[0])

    def sample(self, input_features, lstm_states=None):
        sampled_indices = []
        lstm_inputs = input_features.unsqueeze(1)
        for _ in range(self.max_seq_len):
            hidden_variables, lstm_states = self.lstm_layer(lstm_inputs, lstm_states)
            model_outputs = self.linear_layer(hidden_variables.squeeze(1))
            _, predicted_outputs = model_outputs.max(1)
            sampled_indices.append(predicted_outputs)
            lstm_inputs = self.embedding_layer(predicted_outputs).unsqueeze(1)
        return torch.stack(sampled_indices, 1)


class Vocab(object):
    def __init__(self):
        self.w2i = {}
        self.i2w = {}
        self.index = 0

    def __call__(self, token):
        if token not in self.w2i:
            return self.w2i['<unk>']
        return self.w2i[token]

    def __len__(self):
        return len(self.w2i)

    def add_token(self, token):
        if token not in self.w2i:
            self.w2i[token] = self.index
            self.i2w[self.index] = token
            self.index += 1


def book_params(encoder, decoder):
    """The parameters the book's Adam trains, in its order."""
    return list(decoder.parameters()) + list(encoder.linear_layer.parameters()) + list(encoder.batch_norm.parameters())
`;

/** A Python script: the book's definitions, then `body`. */
export function withBookModels(body: string): string {
  return `${BOOK_MODELS_PY}\n${body}`;
}

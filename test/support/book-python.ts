/**
 * The book's two models and its vocabulary class in Python, as its notebook defines them (with
 * LSTMModel.forward using its argument, not the notebook's global), for tests that exchange files
 * with PyTorch: scripts/fixtures/book_models.py, the one definition every Python side uses.
 */
import * as fs from 'fs';
import * as path from 'path';

export const BOOK_MODELS_PY = fs.readFileSync(path.join(__dirname, '..', '..', 'scripts', 'fixtures', 'book_models.py'), 'utf8');

/** A Python script: the book's definitions, then `body`. */
export function withBookModels(body: string): string {
  return `${BOOK_MODELS_PY}\n${body}`;
}

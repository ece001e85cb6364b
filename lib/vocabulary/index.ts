/** The book's vocabulary: building it from captions, its JSON file, and reading the book's vocabulary.pkl. */
export { Vocabulary, VocabularyError, tokenizeCaption, PAD, START, END, UNK, SPECIAL_TOKENS, DEFAULT_THRESHOLD, VOCABULARY_FORMAT, VOCABULARY_VERSION } from './vocabulary';
export type { VocabularyJSON, BuildOptions } from './vocabulary';
export { readBookVocabularyPickle, loadVocabulary } from './book-pickle';
export type { BookVocabulary, ReadVocabularyOptions } from './book-pickle';

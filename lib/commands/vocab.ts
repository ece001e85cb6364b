/**
 * `torchcap vocab`: the book's vocabulary from a captions file.
 *
 *   torchcap vocab --captions annotations/captions_train2014.json --threshold 4 --out vocab.json
 */
import type { Argv, CommandModule } from 'yargs';
import { Vocabulary, DEFAULT_THRESHOLD } from '../vocabulary/vocabulary';
import { readCaptions } from '../data/datasets';
import { commandFailed, processIO, type CommandIO } from './io';
import { checkInt } from '../util/checks';

export interface VocabCommandOptions {
  captions: string;
  threshold?: number;
  out: string;
  split?: string;
}

export function runVocab(opts: VocabCommandOptions, io: CommandIO = processIO): number {
  try {
    checkInt(opts.threshold ?? DEFAULT_THRESHOLD, '--threshold', 1);
    if (opts.out.endsWith('.pkl')) throw new TypeError(`--out ${opts.out}: torchcap writes vocabularies as JSON, not as the book's pickle: name it .json`);
    const corpus = readCaptions(opts.captions, '.', { split: opts.split });
    const vocab = Vocabulary.build(
      corpus.annotations.map((a) => a.caption),
      { threshold: opts.threshold ?? DEFAULT_THRESHOLD },
    );
    vocab.save(opts.out);
    io.out(`${vocab.size} words (threshold ${opts.threshold ?? DEFAULT_THRESHOLD}, ${corpus.annotations.length} captions) written to ${opts.out}\n`);
    return 0;
  } catch (e) {
    return commandFailed('vocab', io, e);
  }
}

interface VocabArgv {
  captions: string;
  threshold: number;
  out: string;
  split?: string;
}

export const vocabCommand: CommandModule<object, VocabArgv> = {
  command: 'vocab',
  describe: "Build the book's vocabulary (<pad> <start> <end> <unk>, then words seen >= threshold times, in order of first appearance)",
  builder: (y: Argv<object>): Argv<VocabArgv> =>
    y
      .option('captions', { type: 'string', demandOption: true, describe: 'captions file: COCO JSON, Flickr8k token .txt, or JSONL' })
      .option('threshold', { type: 'number', default: DEFAULT_THRESHOLD, describe: 'keep words seen at least this many times' })
      .option('out', { type: 'string', demandOption: true, describe: 'vocabulary JSON to write' })
      .option('split', { type: 'string', describe: 'Flickr8k: list of the images to use (e.g. Flickr_8k.trainImages.txt)' })
      .example('$0 vocab --captions annotations/captions_train2014.json --out vocab.json', 'the book\'s 9,948 words on train2014'),
  handler: (argv) => {
    process.exitCode = runVocab(argv);
  },
};

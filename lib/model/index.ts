/** The book's model: the encoder (CNNModel), the decoder (LSTMModel), and their checkpoints. */
export { CaptionEncoder, BACKBONE_MODES, backboneAutocast, torchvisionToBookKey, bookToTorchvisionKey } from './encoder';
export type { EncoderOptions, BackboneMode, BackboneStage, Autocast } from './encoder';
export { CaptionDecoder, DEFAULT_MAX_SEQ_LEN } from './decoder';
export type { DecoderOptions } from './decoder';
export {
  loadWeights,
  saveWeights,
  loadBackboneWeights,
  loadEncoder,
  loadDecoder,
  inferEncoderOptions,
  inferDecoderOptions,
  saveCheckpoint,
  latestCheckpoint,
  restoreCheckpoint,
  removeTemporaries,
  LATEST,
  CheckpointError,
} from './checkpoint';
export type { LoadEncoderOptions, CheckpointSet, TrainingPosition } from './checkpoint';

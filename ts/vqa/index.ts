/**
 * Visual question answering (SPEC §4): the data path (VQA v2 files in,
 * padded question batches, answer classes, image features and the official
 * accuracy out) and the model on top of it (`VqaModel`, `runVqaExperiment`).
 */
export {
  ANSWER_PUNCTUATION,
  ARTICLES,
  CONTRACTIONS,
  NUMBER_WORDS,
  cleanAnswerWhitespace,
  normalizeAnswer,
  processDigitArticle,
  processPunctuation,
} from './answers'
export { vqaConfusion, type VqaConfusion } from './confusion'
export { openVqaSplit, type VqaSplit, type VqaSplitFiles } from './dataset'
export { VqaFileError, VqaLookupError, VqaShapeError, type VqaFileErrorDetails, type VqaRecordRef } from './errors'
export {
  ImageFeatures,
  writeImageFeatures,
  type ImageFeaturesData,
  type ImageReference,
  type OpenImageFeaturesOptions,
} from './features'
export {
  joinVqa,
  readVqaAnnotations,
  readVqaExamples,
  readVqaQuestions,
  writeVqaAnnotations,
  writeVqaQuestions,
  type VqaAnnotation,
  type VqaExample,
  type VqaFileHeader,
  type VqaFilePair,
  type VqaQuestion,
} from './files'
export {
  evaluateVqa,
  vqaAccuracy,
  type EvaluateVqaOptions,
  type VqaEvaluation,
  type VqaGroupAccuracy,
  type VqaPrediction,
} from './metric'
export {
  SAFETENSORS_DTYPE_BYTES,
  readSafetensorsHeader,
  writeSafetensors,
  type SafetensorsDtype,
  type SafetensorsEntry,
  type SafetensorsHeader,
  type SafetensorsTensor,
} from '../util/safetensors'
export {
  GRID_SIZE,
  POSITION_NAMES,
  SCENE_ENCODINGS,
  SCENE_ENCODING_SIZE,
  SYNTHETIC_ANSWERS,
  SYNTHETIC_COLORS,
  SYNTHETIC_QUESTION_TYPES,
  SYNTHETIC_SHAPES,
  SceneProjection,
  encodeScene,
  generateSyntheticVqa,
  sceneEncodingSize,
  surfaceForms,
  writeSyntheticVqa,
  type SceneEncoding,
  type SyntheticObject,
  type SyntheticQuestionType,
  type SyntheticScene,
  type SyntheticVqa,
  type SyntheticVqaFiles,
  type SyntheticVqaOptions,
} from './synthetic'
export {
  MAX_LSTM_LAYERS,
  VQA_FUSIONS,
  VQA_MODALITIES,
  VQA_NAMES,
  resolveArchitecture,
  vqaGraph,
  type VqaArchitecture,
  type VqaArchitectureOptions,
  type VqaFusion,
  type VqaModality,
  type VqaWordVectors,
} from './graph'
export { MemoryFeatures, indexQuestions, type IndexedQuestions, type FeatureSource } from './inputs'
export {
  VQA_CONFIG_FILE,
  VqaModel,
  type ScoredAnswer,
  type VqaAnswer,
  type VqaBatchLog,
  type VqaData,
  type VqaEpochLog,
  type VqaFitOptions,
  type VqaHistory,
  type VqaModelOptions,
  type VqaScore,
} from './model'
export {
  buildVocabularies,
  createVqaModel,
  openAnnotatedSplit,
  runVqaExperiment,
  type AnnotatedSplit,
  type TrainVqaOptions,
  type VocabularyOptions,
  type VqaExperimentOptions,
  type VqaModelSettings,
  type VqaRun,
} from './pipeline'
export { SeededRandom } from '../util/random'
export { tokenizeQuestion } from './tokenize'
export { readWordVectors, type ReadWordVectorsOptions, type WordVectors } from './word-vectors'
export {
  AnswerVocab,
  PAD_INDEX,
  PAD_TOKEN,
  QuestionVocab,
  UNK_INDEX,
  UNK_TOKEN,
  type AnswerVocabJSON,
  type AnswerVocabOptions,
  type EncodeQuestionsOptions,
  type EncodedQuestions,
  type QuestionVocabJSON,
  type QuestionVocabOptions,
} from './vocab'

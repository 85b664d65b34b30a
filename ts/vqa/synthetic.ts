/**
 * A synthetic VQA data set that exercises the real file path end to end and
 * that cannot be solved from the question alone.
 *
 * Each image is a scene of 2–4 coloured shapes on a 3×3 grid. Its "CNN
 * features" are a fixed random projection of the scene's one-hot encoding,
 * passed through a ReLU after Gaussian noise: a dense, non-negative vector
 * like VGG-16's penultimate layer. The encoding gives each cell either one
 * slot per colour and one per shape (`attributes`, the default), or one slot
 * per coloured shape (`objects`, like a CNN's object detectors). With
 * attributes, "what color is the circle?" asks a network to bind a colour
 * and a shape that sit in one cell but in separate slots; the objects
 * encoding already binds them. Questions
 * come in six types — colour, shape, position, count, existence, and one
 * relation ("what color is the object left of the square?") — and within a
 * type every answer is drawn about equally often, so a question-only model
 * is near chance. Ten annotators answer each question; 0–2 of them give a
 * plausible wrong answer, and some write the right one in another surface
 * form ("Two", "2.", "top-right") that `normalizeAnswer` folds back.
 * Everything depends only on the seeds.
 */
import { join } from 'node:path'

import { OdysseyRangeError } from '../errors'
import { writeImageFeatures } from './features'
import { writeVqaAnnotations, writeVqaQuestions, type VqaAnnotation, type VqaQuestion } from './files'
import { SeededRandom } from '../util/random'

export const SYNTHETIC_COLORS: readonly string[] = ['red', 'green', 'blue', 'yellow', 'purple', 'orange']
export const SYNTHETIC_SHAPES: readonly string[] = ['circle', 'square', 'triangle', 'diamond']
export const GRID_SIZE = 3
/** Answer of a position question, by `[row][column]`. */
export const POSITION_NAMES: readonly (readonly string[])[] = [
  ['top left', 'top', 'top right'],
  ['left', 'center', 'right'],
  ['bottom left', 'bottom', 'bottom right'],
]

/** How a scene becomes the vector that is projected into features (see the file comment). */
export type SceneEncoding = 'attributes' | 'objects'
export const SCENE_ENCODINGS: readonly SceneEncoding[] = ['attributes', 'objects']

export type SyntheticQuestionType = 'color' | 'shape' | 'position' | 'count' | 'exist' | 'relation'
export const SYNTHETIC_QUESTION_TYPES: readonly SyntheticQuestionType[] = [
  'color',
  'shape',
  'position',
  'count',
  'exist',
  'relation',
]

/** The answers each question type draws from, about equally often. */
export const SYNTHETIC_ANSWERS: Readonly<Record<SyntheticQuestionType, readonly string[]>> = {
  color: SYNTHETIC_COLORS,
  shape: SYNTHETIC_SHAPES,
  position: POSITION_NAMES.flat(),
  count: ['0', '1', '2', '3'],
  exist: ['yes', 'no'],
  relation: SYNTHETIC_COLORS,
}

/** `answer_type` of each question type, with the VQA v2 names. */
const ANSWER_TYPES: Readonly<Record<SyntheticQuestionType, string>> = {
  color: 'other',
  shape: 'other',
  position: 'other',
  count: 'number',
  exist: 'yes/no',
  relation: 'other',
}

export interface SyntheticObject {
  color: string
  shape: string
  row: number
  column: number
}

export type SyntheticScene = readonly SyntheticObject[]

export interface SyntheticVqaOptions {
  /** Seed of scenes, questions and answers (default 0). */
  seed?: number
  /** Seed of the feature projection (default 1234). Keep it equal across splits so their features agree. */
  projectionSeed?: number
  /** Number of images (default 200). */
  images?: number
  /** Questions per image, at most (default 5; fewer only if a scene runs out of distinct questions). */
  questionsPerImage?: number
  /** Feature dimension D (default 512). */
  featureDim?: number
  /** Standard deviation of the noise added before the ReLU (default 0.1; projected values have std ≈ 2–3). */
  noise?: number
  /** Most annotators (of 10) who give a wrong answer (default 2). */
  maxWrongAnswers?: number
  /** Id of the first image (default 1); ids are consecutive, question ids are imageId·1000 + k as in VQA v2. */
  firstImageId?: number
  /** What the features encode per cell (default `'attributes'`). Keep it equal across splits. */
  sceneEncoding?: SceneEncoding
}

export interface SyntheticVqa {
  /** Every option, defaults filled in: what reproduces this data set. */
  config: Required<SyntheticVqaOptions>
  questions: VqaQuestion[]
  /** Same order as `questions`; `questionType` is a `SyntheticQuestionType`. */
  annotations: VqaAnnotation[]
  /** Scene of each image id. */
  scenes: Map<number, SyntheticScene>
  /** `[N]`: image id of each feature row; rows are shuffled so a reader must look ids up. */
  imageIds: number[]
  /** `[N, D]` */
  features: Float32Array
  dim: number
}

type ResolvedOptions = Required<SyntheticVqaOptions>

/** Generates the data set in memory. */
export function generateSyntheticVqa(options: SyntheticVqaOptions = {}): SyntheticVqa {
  const config = resolveOptions(options)
  const random = new SeededRandom(config.seed)
  const projection = new SceneProjection(config.featureDim, config.projectionSeed, config.sceneEncoding)
  const balance = new AnswerBalance()
  const scenes = new Map<number, SyntheticScene>()
  const questions: VqaQuestion[] = []
  const annotations: VqaAnnotation[] = []
  for (let image = 0; image < config.images; image++) {
    const imageId = config.firstImageId + image
    const scene = randomScene(random)
    scenes.set(imageId, scene)
    chooseQuestions(scene, config.questionsPerImage, random, balance).forEach(({ type, question, answer }, k) => {
      const questionId = imageId * 1000 + k
      questions.push({ questionId, imageId, question })
      annotations.push({
        questionId,
        imageId,
        questionType: type,
        answerType: ANSWER_TYPES[type],
        multipleChoiceAnswer: answer,
        answers: humanAnswers(type, answer, config.maxWrongAnswers, random),
      })
    })
  }
  const imageIds = random.shuffled([...scenes.keys()])
  const features = new Float32Array(imageIds.length * config.featureDim)
  imageIds.forEach((imageId, row) => {
    features.set(
      projection.project(scenes.get(imageId) as SyntheticScene, config.noise, random),
      row * config.featureDim,
    )
  })
  return { config, questions, annotations, scenes, imageIds, features, dim: config.featureDim }
}

function resolveOptions(options: SyntheticVqaOptions): ResolvedOptions {
  const config: ResolvedOptions = {
    seed: options.seed ?? 0,
    projectionSeed: options.projectionSeed ?? 1234,
    images: options.images ?? 200,
    questionsPerImage: options.questionsPerImage ?? 5,
    featureDim: options.featureDim ?? 512,
    noise: options.noise ?? 0.1,
    maxWrongAnswers: options.maxWrongAnswers ?? 2,
    firstImageId: options.firstImageId ?? 1,
    sceneEncoding: options.sceneEncoding ?? 'attributes',
  }
  if (!SCENE_ENCODINGS.includes(config.sceneEncoding)) {
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      `synthetic VQA: sceneEncoding must be one of ${SCENE_ENCODINGS.join(', ')}, got ${JSON.stringify(config.sceneEncoding)}`,
    )
  }
  const limits: [Exclude<keyof ResolvedOptions, 'sceneEncoding'>, number, number][] = [
    ['seed', 0, 2 ** 32 - 1],
    ['projectionSeed', 0, 2 ** 32 - 1],
    ['images', 1, 1e7],
    ['questionsPerImage', 1, 999],
    ['featureDim', 1, 1e5],
    ['maxWrongAnswers', 0, 4],
    ['firstImageId', 0, 2 ** 40],
  ]
  for (const [name, low, high] of limits) {
    const value = config[name]
    if (!Number.isInteger(value) || value < low || value > high) {
      throw new OdysseyRangeError(
        'ODYSSEY_INVALID',
        `synthetic VQA: ${name} must be an integer in ${low}..${high}, got ${value}`,
      )
    }
  }
  if (!(config.noise >= 0 && Number.isFinite(config.noise))) {
    throw new OdysseyRangeError('ODYSSEY_INVALID', `synthetic VQA: noise must be finite and >= 0, got ${config.noise}`)
  }
  return config
}

/** 2–4 objects in distinct cells; objects often repeat an earlier one's shape or colour, so counts above 1 occur. */
function randomScene(random: SeededRandom): SyntheticScene {
  const objectCount = random.between(2, 4)
  const cells = random.shuffled([...Array(GRID_SIZE * GRID_SIZE).keys()]).slice(0, objectCount)
  const objects: SyntheticObject[] = []
  for (const cell of cells) {
    const earlier = objects.length > 0 ? random.pick(objects) : undefined
    const shape = earlier !== undefined && random.next() < 0.35 ? earlier.shape : random.pick(SYNTHETIC_SHAPES)
    const color = earlier !== undefined && random.next() < 0.3 ? earlier.color : random.pick(SYNTHETIC_COLORS)
    objects.push({ color, shape, row: Math.floor(cell / GRID_SIZE), column: cell % GRID_SIZE })
  }
  return objects
}

interface Candidate {
  question: string
  answer: string
}

interface ChosenQuestion extends Candidate {
  type: SyntheticQuestionType
}

/**
 * Up to `count` distinct questions about `scene`, cycling through the types
 * in a per-image order; each picks the answer its type has given least so
 * far among those the scene allows, which keeps answers balanced per type.
 */
function chooseQuestions(
  scene: SyntheticScene,
  count: number,
  random: SeededRandom,
  balance: AnswerBalance,
): ChosenQuestion[] {
  const order = random.shuffled(SYNTHETIC_QUESTION_TYPES)
  const chosen: ChosenQuestion[] = []
  const asked = new Set<string>()
  for (let attempt = 0; chosen.length < count && attempt < count + order.length; attempt++) {
    const type = order[attempt % order.length] as SyntheticQuestionType
    const candidates = CANDIDATES[type](scene).filter(
      ({ question, answer }) => !asked.has(question) && SYNTHETIC_ANSWERS[type].includes(answer),
    )
    if (candidates.length === 0) continue
    const answer = balance.leastUsed(type, [...new Set(candidates.map((candidate) => candidate.answer))], random)
    const pick = random.pick(candidates.filter((candidate) => candidate.answer === answer))
    balance.record(type, answer)
    asked.add(pick.question)
    chosen.push({ type, ...pick })
  }
  return chosen
}

/** How often each answer of each type has been chosen so far. */
class AnswerBalance {
  private readonly counts = new Map<string, number>()

  leastUsed(type: SyntheticQuestionType, answers: readonly string[], random: SeededRandom): string {
    const uses = answers.map((answer) => this.counts.get(`${type}:${answer}`) ?? 0)
    const fewest = Math.min(...uses)
    return random.pick(answers.filter((_, index) => uses[index] === fewest))
  }

  record(type: SyntheticQuestionType, answer: string) {
    const key = `${type}:${answer}`
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
  }
}

/** Every question of each type that has exactly one right answer in the scene. */
const CANDIDATES: Readonly<Record<SyntheticQuestionType, (scene: SyntheticScene) => Candidate[]>> = {
  color: (scene) =>
    uniqueBy(scene, (object) => object.shape).flatMap(({ shape, color }) => [
      { question: `what color is the ${shape}?`, answer: color },
      { question: `what is the color of the ${shape}?`, answer: color },
    ]),
  shape: (scene) =>
    uniqueBy(scene, (object) => object.color).flatMap(({ shape, color }) => [
      { question: `what shape is the ${color} object?`, answer: shape },
      { question: `which shape is ${color}?`, answer: shape },
    ]),
  position: (scene) =>
    uniqueBy(scene, (object) => `${object.color} ${object.shape}`).map(({ shape, color, row, column }) => ({
      question: `where is the ${color} ${shape}?`,
      answer: POSITION_NAMES[row]?.[column] as string,
    })),
  count: (scene) => [
    ...SYNTHETIC_SHAPES.map((shape) => ({
      question: `how many ${shape}s are there?`,
      answer: String(scene.filter((object) => object.shape === shape).length),
    })),
    ...SYNTHETIC_COLORS.map((color) => ({
      question: `how many ${color} objects are there?`,
      answer: String(scene.filter((object) => object.color === color).length),
    })),
  ],
  exist: (scene) =>
    SYNTHETIC_COLORS.flatMap((color) => SYNTHETIC_SHAPES.map((shape) => ({ color, shape })))
      // Absent pairs that share nothing with the scene would be easy "no"s; keep the near misses.
      .filter(({ color, shape }) => scene.some((object) => object.color === color || object.shape === shape))
      .map(({ color, shape }) => ({
        question: `is there a ${color} ${shape}?`,
        answer: scene.some((object) => object.color === color && object.shape === shape) ? 'yes' : 'no',
      })),
  relation: (scene) =>
    uniqueBy(scene, (object) => object.shape).flatMap((anchor) =>
      RELATIONS.flatMap(({ phrase, holds }) => {
        const related = scene.filter((object) => holds(object, anchor))
        if (related.length !== 1) return []
        return [
          {
            question: `what color is the object ${phrase} the ${anchor.shape}?`,
            answer: (related[0] as SyntheticObject).color,
          },
        ]
      }),
    ),
}

/** "left of X": same row, any column left of X; "above X": same column, any row above. */
const RELATIONS: readonly { phrase: string; holds: (object: SyntheticObject, anchor: SyntheticObject) => boolean }[] = [
  { phrase: 'left of', holds: (object, anchor) => object.row === anchor.row && object.column < anchor.column },
  { phrase: 'right of', holds: (object, anchor) => object.row === anchor.row && object.column > anchor.column },
  { phrase: 'above', holds: (object, anchor) => object.column === anchor.column && object.row < anchor.row },
  { phrase: 'below', holds: (object, anchor) => object.column === anchor.column && object.row > anchor.row },
]

/** Objects whose `key` no other object of the scene shares. */
function uniqueBy(scene: SyntheticScene, key: (object: SyntheticObject) => string): SyntheticObject[] {
  return scene.filter((object) => scene.filter((other) => key(other) === key(object)).length === 1)
}

const ANNOTATORS = 10
/** Chance that an annotator who is right writes the answer in another surface form. */
const VARIANT_RATE = 0.2
const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four']

/** Ten raw answers: mostly `answer`, some in other surface forms, 0..maxWrong plausible wrong ones. */
function humanAnswers(type: SyntheticQuestionType, answer: string, maxWrong: number, random: SeededRandom): string[] {
  const wrong = Math.min(maxWrong, random.pick([0, 0, 0, 1, 1, 2]))
  const alternatives = SYNTHETIC_ANSWERS[type].filter((other) => other !== answer)
  const answers = [...Array(ANNOTATORS - wrong)].map(() =>
    random.next() < VARIANT_RATE ? random.pick(surfaceForms(answer)) : answer,
  )
  for (let i = 0; i < wrong; i++) answers.push(random.pick(alternatives))
  return random.shuffled(answers)
}

/** Spellings of `answer` that the official normalisation maps back to it. */
export function surfaceForms(answer: string): string[] {
  const forms = [answer.charAt(0).toUpperCase() + answer.slice(1), `${answer}.`, ` ${answer} `]
  const number = NUMBER_WORDS[Number(answer)]
  if (/^\d$/.test(answer) && number !== undefined) forms.push(number, number.charAt(0).toUpperCase() + number.slice(1))
  if (answer.includes(' ')) forms.push(answer.replace(/ /g, '-'))
  if (SYNTHETIC_SHAPES.includes(answer)) forms.push(`a ${answer}`, `the ${answer}`)
  return forms
}

/** Slots per cell of each encoding: a colour and a shape slot, or one per coloured shape. */
const CELL_SLOTS: Readonly<Record<SceneEncoding, number>> = {
  attributes: SYNTHETIC_COLORS.length + SYNTHETIC_SHAPES.length,
  objects: SYNTHETIC_COLORS.length * SYNTHETIC_SHAPES.length,
}

/** Length of a scene's encoding. */
export function sceneEncodingSize(encoding: SceneEncoding = 'attributes'): number {
  return GRID_SIZE * GRID_SIZE * CELL_SLOTS[encoding]
}

/** Length of a scene's `attributes` encoding: per cell, one colour slot and one shape slot set. */
export const SCENE_ENCODING_SIZE = sceneEncodingSize('attributes')

/** The slots an object sets in its cell: `[colours…, shapes…]`, or the one of its colour·shape pair. */
function objectSlots(encoding: SceneEncoding, { color, shape }: SyntheticObject): number[] {
  const colorIndex = SYNTHETIC_COLORS.indexOf(color)
  const shapeIndex = SYNTHETIC_SHAPES.indexOf(shape)
  if (encoding === 'objects') return [colorIndex * SYNTHETIC_SHAPES.length + shapeIndex]
  return [colorIndex, SYNTHETIC_COLORS.length + shapeIndex]
}

/** One-hot encoding of a scene: `[sceneEncodingSize(encoding)]`, cells row-major. */
export function encodeScene(scene: SyntheticScene, encoding: SceneEncoding = 'attributes'): Float32Array {
  const vector = new Float32Array(sceneEncodingSize(encoding))
  for (const object of scene) {
    const cell = (object.row * GRID_SIZE + object.column) * CELL_SLOTS[encoding]
    for (const slot of objectSlots(encoding, object)) vector[cell + slot] = 1
  }
  return vector
}

/** The fixed map scene → features: relu(W · encodeScene(scene) + noise), W `[D, sceneEncodingSize]` ~ N(0, 1). */
export class SceneProjection {
  /** `[D, sceneEncodingSize(encoding)]` */
  readonly weights: Float32Array
  private readonly size: number

  constructor(
    readonly dim: number,
    seed: number,
    readonly encoding: SceneEncoding = 'attributes',
  ) {
    const random = new SeededRandom(seed)
    this.size = sceneEncodingSize(encoding)
    this.weights = Float32Array.from({ length: dim * this.size }, () => random.normal())
  }

  /** Features of `scene`: `[D]`, non-negative. */
  project(scene: SyntheticScene, noise: number, random: SeededRandom): Float32Array {
    const encoding = encodeScene(scene, this.encoding)
    // The encoding is one-hot per cell, so W · e is a sum of a few columns.
    const active = [...encoding.keys()].filter((j) => encoding[j] === 1)
    const features = new Float32Array(this.dim)
    for (let d = 0; d < this.dim; d++) {
      const row = d * this.size
      const projected = active.reduce((sum, j) => sum + (this.weights[row + j] as number), 0)
      features[d] = Math.max(0, projected + noise * random.normal())
    }
    return features
  }
}

export interface SyntheticVqaFiles {
  questionsFile: string
  annotationsFile: string
  featuresFile: string
}

/**
 * Generates the data set and writes it in the VQA v2 layout into
 * `directory`: `synthetic_<split>_questions.json`,
 * `synthetic_<split>_annotations.json`, `synthetic_<split>_features.safetensors`.
 */
export async function writeSyntheticVqa(
  directory: string,
  options: SyntheticVqaOptions & { split?: string } = {},
): Promise<SyntheticVqaFiles & { data: SyntheticVqa }> {
  const split = options.split ?? 'train'
  const data = generateSyntheticVqa(options)
  const files: SyntheticVqaFiles = {
    questionsFile: join(directory, `synthetic_${split}_questions.json`),
    annotationsFile: join(directory, `synthetic_${split}_annotations.json`),
    featuresFile: join(directory, `synthetic_${split}_features.safetensors`),
  }
  const header = {
    info: { description: 'odyssey-rnn synthetic VQA: coloured shapes on a 3x3 grid', ...data.config },
    data_type: 'synthetic-shapes',
    data_subtype: split,
    license: { name: 'MIT' },
  }
  await writeVqaQuestions(files.questionsFile, data.questions, { ...header, task_type: 'Open-Ended' })
  await writeVqaAnnotations(files.annotationsFile, data.annotations, header)
  await writeImageFeatures(files.featuresFile, { imageIds: data.imageIds, features: data.features, dim: data.dim })
  return { ...files, data }
}

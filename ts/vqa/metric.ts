/**
 * VQA accuracy (Antol et al. 2015; the official evaluation code, vqaEval.py).
 *
 * For one question with n human answers (n = 10 in VQA) and a predicted
 * answer: for each human i, acc_i = min(#{j ≠ i : human j gave the
 * prediction} / 3, 1); the question's accuracy is the mean of the n acc_i,
 * i.e. `min(#humans / 3, 1)` averaged over the n subsets of n − 1 humans.
 * With 10 humans, a prediction matching exactly 3 of them scores
 * (3 · 2/3 + 7 · 1) / 10 = 0.9; matching 1 scores 0.3 — not 1/3.
 *
 * Answers are compared after the official normalisation (`normalizeAnswer`),
 * except, as in the official code, when all human answers are the same
 * string after trimming: then the prediction must equal that string as it is.
 */
import { OdysseyRangeError } from '../errors'
import { cleanAnswerWhitespace, normalizeAnswer } from './answers'
import { VqaLookupError } from './errors'
import type { VqaAnnotation } from './files'

/** Humans who must agree for full credit. */
const FULL_CREDIT_HUMANS = 3

/**
 * Accuracy in [0, 1] of `predicted` against one question's human answers
 * (`[n]`, n ≥ 1, raw strings as in the annotations file).
 */
export function vqaAccuracy(predicted: string, humanAnswers: readonly string[]): number {
  return accuracyWith(normalizeAnswer, predicted, humanAnswers)
}

function accuracyWith(
  normalize: (answer: string) => string,
  predicted: string,
  humanAnswers: readonly string[],
): number {
  if (humanAnswers.length === 0) {
    throw new OdysseyRangeError('ODYSSEY_INVALID', 'vqaAccuracy: a question needs at least one human answer')
  }
  const { prediction, humans } = comparableAnswers(normalize, predicted, humanAnswers)
  const matches = humans.filter((human) => human === prediction).length
  let total = 0
  for (const human of humans) {
    const othersMatching = matches - (human === prediction ? 1 : 0)
    total += Math.min(othersMatching / FULL_CREDIT_HUMANS, 1)
  }
  return total / humans.length
}

/** The strings the official code compares: normalised unless every human gave the same (trimmed) answer. */
function comparableAnswers(normalize: (answer: string) => string, predicted: string, humanAnswers: readonly string[]) {
  const humans = humanAnswers.map(cleanAnswerWhitespace)
  const prediction = cleanAnswerWhitespace(predicted)
  if (new Set(humans).size === 1) return { prediction, humans }
  return { prediction: normalize(prediction), humans: humans.map(normalize) }
}

/** `normalizeAnswer` with memory: VQA answers repeat ("yes" is a quarter of them), so most calls are look-ups. */
function memoizedNormalizer(): (answer: string) => string {
  const cache = new Map<string, string>()
  return (answer) => {
    let normalized = cache.get(answer)
    if (normalized === undefined) {
      normalized = normalizeAnswer(answer)
      cache.set(answer, normalized)
    }
    return normalized
  }
}

/** A prediction in the official results format. */
export interface VqaPrediction {
  question_id: number
  answer: string
}

/** One group of the breakdown: mean accuracy (percent) over its questions. */
export interface VqaGroupAccuracy {
  accuracy: number
  questions: number
}

/** What `evaluateVqa` returns; plain data, ready for `JSON.stringify`. Accuracies are percentages (0–100). */
export interface VqaEvaluation {
  questions: number
  overall: number
  /** By `question_type` (e.g. "what color is the"), or the caller's `questionTypeOf`. */
  perQuestionType: Record<string, VqaGroupAccuracy>
  /** By `answer_type` ("yes/no", "number", "other"), or the caller's `answerTypeOf`. */
  perAnswerType: Record<string, VqaGroupAccuracy>
  /** question_id → accuracy, only with `includePerQuestion`. */
  perQuestion?: Record<string, number>
}

export interface EvaluateVqaOptions {
  /** Decimals of the reported percentages, as the official `n` (default 2); `null` keeps full precision. */
  decimals?: number | null
  /** Type of a question whose annotation has no `question_type`; `undefined` leaves it out of the breakdown. */
  questionTypeOf?: (annotation: VqaAnnotation) => string | undefined
  /** Type of a question whose annotation has no `answer_type`. */
  answerTypeOf?: (annotation: VqaAnnotation) => string | undefined
  includePerQuestion?: boolean
}

/**
 * Official VQA accuracy of `predictions` on `annotations`, overall and per
 * question and answer type. Like the official tool, every annotated question
 * needs exactly one prediction and every prediction an annotated question
 * (`VqaLookupError` otherwise); to score a subset, pass only its annotations.
 */
export function evaluateVqa(
  annotations: readonly VqaAnnotation[],
  predictions: ReadonlyMap<number, string> | readonly VqaPrediction[],
  options: EvaluateVqaOptions = {},
): VqaEvaluation {
  const answers = predictionMap(predictions, annotations)
  const overall = new Group()
  const byQuestionType = new Map<string, Group>()
  const byAnswerType = new Map<string, Group>()
  const perQuestion: Record<string, number> = {}
  const normalize = memoizedNormalizer()
  for (const annotation of annotations) {
    const accuracy = accuracyWith(normalize, answers.get(annotation.questionId) as string, annotation.answers)
    overall.add(accuracy)
    addToGroup(byQuestionType, annotation.questionType ?? options.questionTypeOf?.(annotation), accuracy)
    addToGroup(byAnswerType, annotation.answerType ?? options.answerTypeOf?.(annotation), accuracy)
    if (options.includePerQuestion) perQuestion[annotation.questionId] = accuracy
  }
  const percent = percentFormatter(options.decimals === undefined ? 2 : options.decimals)
  return {
    questions: overall.count,
    overall: percent(overall.mean()),
    perQuestionType: summarise(byQuestionType, percent),
    perAnswerType: summarise(byAnswerType, percent),
    ...(options.includePerQuestion ? { perQuestion: mapValues(perQuestion, percent) } : {}),
  }
}

/** Predictions by question id, checked against the annotated questions in both directions. */
function predictionMap(
  predictions: ReadonlyMap<number, string> | readonly VqaPrediction[],
  annotations: readonly VqaAnnotation[],
): ReadonlyMap<number, string> {
  const answers = isPredictionMap(predictions) ? predictions : predictionsById(predictions)
  const annotated = new Set<number>()
  for (const { questionId } of annotations) {
    annotated.add(questionId)
    if (!answers.has(questionId)) {
      throw new VqaLookupError(questionId, `evaluateVqa: no prediction for annotated question_id ${questionId}`)
    }
  }
  for (const questionId of answers.keys()) {
    if (!annotated.has(questionId)) {
      throw new VqaLookupError(
        questionId,
        `evaluateVqa: prediction for question_id ${questionId}, which has no annotation`,
      )
    }
  }
  return answers
}

function isPredictionMap(
  predictions: ReadonlyMap<number, string> | readonly VqaPrediction[],
): predictions is ReadonlyMap<number, string> {
  return predictions instanceof Map
}

function predictionsById(predictions: readonly VqaPrediction[]): Map<number, string> {
  const answers = new Map<number, string>()
  predictions.forEach(({ question_id: questionId, answer }, index) => {
    if (answers.has(questionId)) {
      throw new VqaLookupError(questionId, `evaluateVqa: predictions[${index}] repeats question_id ${questionId}`)
    }
    answers.set(questionId, answer)
  })
  return answers
}

class Group {
  count = 0
  private sum = 0

  add(accuracy: number) {
    this.count += 1
    this.sum += accuracy
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count
  }
}

function addToGroup(groups: Map<string, Group>, key: string | undefined, accuracy: number) {
  if (key === undefined) return
  let group = groups.get(key)
  if (group === undefined) {
    group = new Group()
    groups.set(key, group)
  }
  group.add(accuracy)
}

function summarise(
  groups: Map<string, Group>,
  percent: (fraction: number) => number,
): Record<string, VqaGroupAccuracy> {
  // fromEntries defines own properties, so a type named "__proto__" stays a key.
  return Object.fromEntries(
    [...groups].map(([key, group]) => [key, { accuracy: percent(group.mean()), questions: group.count }]),
  )
}

function mapValues(record: Record<string, number>, map: (value: number) => number): Record<string, number> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, map(value)]))
}

/** Fraction → percentage, rounded like the official `round(100 * x, n)` (up to Python's half-even ties). */
function percentFormatter(decimals: number | null): (fraction: number) => number {
  if (decimals === null) return (fraction) => 100 * fraction
  const scale = 10 ** decimals
  return (fraction) => Math.round(100 * fraction * scale) / scale
}

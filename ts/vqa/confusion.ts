/**
 * Which answers a model confuses: among the most frequent reference answers
 * of a split, how often each was answered with each other one — the
 * `confusion` of a run log's `vqa` record (ts/report/log.ts).
 */
import { normalizeAnswer } from './answers'
import type { VqaAnnotation } from './files'

export interface VqaConfusion {
  /** The `top` most frequent reference answers (`multiple_choice_answer`, normalised), most frequent first. */
  answers: string[]
  /** `[top, top]`: `counts[i][j]` = questions whose reference answer is `answers[i]` that were answered `answers[j]`. */
  counts: number[][]
}

/**
 * Confusion counts of `predictions` (question id → answer) over the questions whose reference
 * answer is among the `top` most frequent; predictions outside those answers are not counted.
 */
export function vqaConfusion(
  annotations: readonly VqaAnnotation[],
  predictions: ReadonlyMap<number, string>,
  top: number,
): VqaConfusion {
  const references = annotations.map((annotation) => normalizeAnswer(annotation.multipleChoiceAnswer))
  const frequency = new Map<string, number>()
  for (const reference of references) frequency.set(reference, (frequency.get(reference) ?? 0) + 1)
  const answers = [...frequency]
    .sort(([a, countA], [b, countB]) => countB - countA || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, top)
    .map(([answer]) => answer)
  const index = new Map(answers.map((answer, k) => [answer, k]))
  const counts = answers.map(() => new Array<number>(answers.length).fill(0))
  annotations.forEach(({ questionId }, k) => {
    const row = index.get(references[k] as string)
    const column = index.get(normalizeAnswer(predictions.get(questionId) ?? ''))
    if (row !== undefined && column !== undefined) (counts[row] as number[])[column] += 1
  })
  return { answers, counts }
}

/** Seeded synthetic tasks for recurrent networks: long-range memory benchmarks and a sequence-to-sequence task. */
export { ADDING_BASELINE_MSE, addingProblem, type AddingProblem, type AddingProblemOptions } from './adding'
export { copyMemory, type CopyMemory, type CopyMemoryOptions } from './copy-memory'
export {
  digitReversal,
  exactMatch,
  REVERSAL_START,
  REVERSAL_STOP,
  REVERSAL_VOCABULARY,
  type DigitReversal,
  type DigitReversalOptions,
} from './digit-reversal'

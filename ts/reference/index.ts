/**
 * The pure-TypeScript reference backend (`backend: 'js'`): SPEC §1 and §2 with
 * plain loops, the oracle of the test suite and the benchmarks' JS baseline.
 */
export { ReferenceLstm, type ReferenceLstmConfig } from './lstm'
export { ReferenceSimpleRnn, type ReferenceSimpleRnnConfig } from './simple-rnn'

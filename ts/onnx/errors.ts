import { OdysseyRangeError } from '../errors'

/**
 * A model that ONNX's operators cannot express exactly: `code` `'ODYSSEY_UNSUPPORTED'`,
 * `node` the spec node, `feature` what it uses (e.g. `'LSTM variant NIG'`).
 */
export class OnnxUnsupportedError extends OdysseyRangeError {
  constructor(
    readonly node: string,
    readonly feature: string,
    reason: string,
  ) {
    super('ODYSSEY_UNSUPPORTED', `exportOnnx: node "${node}" uses ${feature}, which ONNX cannot express: ${reason}`)
  }
}

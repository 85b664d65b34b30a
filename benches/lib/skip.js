'use strict'

/** Thrown by an implementation adapter for a case it cannot run; the record says why. */
class SkipCase extends Error {
  constructor(reason) {
    super(reason)
    this.name = 'SkipCase'
  }
}

module.exports = { SkipCase }

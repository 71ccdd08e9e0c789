/**
 * What generation needs from an inference engine, whatever the model: prime rows with known codes,
 * then advance them one sample at a time. src/infer/step-generator.ts implements it over the graphs
 * of either engine (onnxruntime or tfjs, opened by src/infer/engines.ts); tests may implement it
 * with a small table model.
 */
export interface Generator {
  /** rows generated together */
  readonly batch: number;
  /** e.g. "onnxruntime (cpu, 2 threads)" */
  readonly engine: string;
  /**
   * Feed the same known codes to every row (the prompt), from empty state. Returns the
   * log-probabilities [batch * NUM_CODES] of the code after the last one fed.
   */
  prime(codes: Uint8Array): Promise<Float32Array>;
  /** Feed one code per row; returns the log-probabilities [batch * NUM_CODES] of each row's next code. */
  step(codes: Int32Array): Promise<Float32Array>;
  dispose(): Promise<void>;
}

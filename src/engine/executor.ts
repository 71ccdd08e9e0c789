/**
 * The contract between a host program and one inference graph, whichever engine runs it
 * (onnxruntime sessions, or the tfjs executor running the same graph builder eagerly).
 */
export interface Fed {
  data: Float32Array;
  shape: readonly number[];
}

/** Graph inputs by name. */
export type Feeds = Record<string, Fed>;

export interface GraphExecutor {
  run(feeds: Feeds): Promise<Record<string, Float32Array>>;
  dispose(): Promise<void>;
}

/** Runs one inference graph on named float32 feeds; the engines behind it are tfjs and onnxruntime. */
export interface Fed {
  data: Float32Array;
  shape: readonly number[];
}

export type Feeds = Record<string, Fed>;

export interface GraphExecutor {
  run(feeds: Feeds): Promise<Record<string, Float32Array>>;
  dispose(): Promise<void>;
}

/** Which engine, device and thread count ran a graph, in words for the user. */
export interface EngineInfo {
  engine: 'onnxruntime' | 'tfjs';
  /** onnxruntime: cpu or cuda; tfjs: the backend */
  device: string;
  threads?: number;
  summary: string;
}

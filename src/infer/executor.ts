/** Which engine, device and thread count ran a graph, in words for the user. */
export interface EngineInfo {
  engine: 'onnxruntime' | 'tfjs';
  /** onnxruntime: cpu or cuda; tfjs: the backend */
  device: string;
  threads?: number;
  summary: string;
}

/**
 * The ONNX protobuf schema (the subset of onnx/onnx.proto3 a model file needs), decoded and encoded
 * with protobufjs. Field numbers follow onnx.proto3 exactly; fields we never read are skipped by
 * protobufjs, so models written by newer ONNX versions still decode. The encoder writes the graphs
 * that keras-to-onnx.ts converts.
 */
import * as protobuf from 'protobufjs';

const ONNX_PROTO = `
syntax = "proto3";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; SPARSE_TENSOR = 11; TYPE_PROTO = 13;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10; SPARSE_TENSORS = 12; TYPE_PROTOS = 14; }
  string name = 1;
  string ref_attr_name = 21;
  string doc_string = 13;
  AttributeType type = 20;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
}
message ValueInfoProto { string name = 1; TypeProto type = 2; string doc_string = 3; }
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  string domain = 7;
  repeated AttributeProto attribute = 5;
  string doc_string = 6;
}
message ModelProto {
  int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  string producer_name = 2;
  string producer_version = 3;
  string domain = 4;
  int64 model_version = 5;
  string doc_string = 6;
  GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}
message StringStringEntryProto { string key = 1; string value = 2; }
message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}
message TensorProto {
  enum DataType { UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; UINT16 = 4; INT16 = 5; INT32 = 6; INT64 = 7; STRING = 8;
    BOOL = 9; FLOAT16 = 10; DOUBLE = 11; UINT32 = 12; UINT64 = 13; COMPLEX64 = 14; COMPLEX128 = 15; BFLOAT16 = 16; }
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  string name = 8;
  string doc_string = 12;
  bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  enum DataLocation { DEFAULT = 0; EXTERNAL = 1; }
  DataLocation data_location = 14;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
}
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } string denotation = 3; }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
  string denotation = 6;
}
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
`;

/** Plain-object views of the decoded messages (int64 fields arrive as numbers, Long or {low,high}). */
export type Int64Like = number | { low: number; high: number; toNumber?: () => number };
export interface TensorProto {
  dims?: Int64Like[]; dataType?: number; floatData?: number[]; int32Data?: number[]; int64Data?: Int64Like[];
  doubleData?: number[]; uint64Data?: Int64Like[]; stringData?: Uint8Array[];
  name?: string; rawData?: Uint8Array; externalData?: { key: string; value: string }[]; dataLocation?: number;
}
export interface AttributeProto {
  name: string; type?: number; f?: number; i?: Int64Like; s?: Uint8Array; t?: TensorProto; g?: GraphProto;
  floats?: number[]; ints?: Int64Like[]; strings?: Uint8Array[]; tensors?: TensorProto[];
}
export interface NodeProto { input?: string[]; output?: string[]; name?: string; opType: string; domain?: string; attribute?: AttributeProto[] }
export interface ValueInfoProto {
  name: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: { dimValue?: Int64Like; dimParam?: string }[] } } };
}
export interface GraphProto {
  node?: NodeProto[]; name?: string; initializer?: TensorProto[]; input?: ValueInfoProto[]; output?: ValueInfoProto[]; valueInfo?: ValueInfoProto[];
}
export interface ModelProto {
  irVersion?: Int64Like;
  docString?: string; opsetImport?: { domain?: string; version?: Int64Like }[]; producerName?: string; producerVersion?: string; graph?: GraphProto;
}

let modelType: protobuf.Type | null = null;

function onnxModelType(): protobuf.Type {
  if (!modelType) modelType = protobuf.parse(ONNX_PROTO, { keepCase: false }).root.lookupType('onnx.ModelProto');
  return modelType;
}

/** Decodes the bytes of a .onnx file into a plain ModelProto object. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnxModelType().decode(bytes) as unknown as ModelProto;
}

/** Encodes a plain ModelProto object (the same camelCase fields {@link decodeModel} returns) into .onnx bytes. */
export function encodeModel(model: ModelProto): Uint8Array {
  const t = onnxModelType();
  const err = t.verify(model);
  if (err) throw new Error(`encodeModel: not a valid ONNX ModelProto: ${err}`);
  return t.encode(t.fromObject(model as unknown as Record<string, unknown>)).finish();
}

/** An int64 proto field as a JavaScript number (exact up to 2^53; INT64_MAX saturates to ~9.2e18). */
export function int64(v: Int64Like | undefined): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  if (typeof v.toNumber === 'function') return v.toNumber();
  return v.high * 4294967296 + (v.low >>> 0);
}

/** ONNX TensorProto.DataType codes. */
export const ONNX_DTYPE: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

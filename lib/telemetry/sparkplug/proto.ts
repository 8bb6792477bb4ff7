/**
 * The Sparkplug B wire schema (eclipse/tahu sparkplug_b.proto, proto2, package org.eclipse.tahu.protobuf),
 * loaded at runtime with protobufjs.
 *
 * Why protobufjs 7 with the schema embedded, and not the official npm `sparkplug-payload`:
 * - correctness: sparkplug-payload (Tahu JS, checked in its lib/sparkplugbpayload.ts) puts UInt32 in `long_value`
 *   when encoding and only reads `long_value` for UInt32 when decoding, whereas the spec and the proto say UInt32
 *   travels in `int_value` (uint32); a spec-conforming edge node's UInt32 would decode as undefined. It also reads
 *   Int8/Int16 by sign-extending 32 bits only, so an Int8 -1 sent as 0xFF comes out as 255. Decoding by datatype
 *   ourselves (codec.ts) fixes both, and needs only the raw fields.
 * - maintenance: sparkplug-payload (1.0.3) depends on protobufjs ^6, an older major than the 7.x already in our
 *   tree, so it would add a second protobufjs (plus long 4) that only gets backports. protobufjs 7.6.6 is
 *   already installed (OpenTelemetry's otlp-transformer and grpc's proto-loader use it, deduped) and the 7.x line
 *   is still released; we pin it explicitly so that a change in those dependents cannot remove it.
 *   Upgrading to 8.x later only touches this file and codec.ts.
 * - speed: both end up in protobufjs' generated decoder; we skip sparkplug-payload's second pass that rebuilds
 *   every metric into a "user" object (type names as strings, DataSets, PropertySets) we would then walk again.
 *
 * The schema below is the Tahu definition minus comments and the DataType enum (datatype travels as a plain
 * uint32; see DataType in this file). Field names are snake_case here; protobufjs exposes them camelCased
 * (`int_value` → `intValue`), which is what codec.ts reads and writes.
 */
import protobuf from 'protobufjs';

const SPARKPLUG_B_PROTO = `
syntax = "proto2";
package org.eclipse.tahu.protobuf;

message Payload {
  message Template {
    message Parameter {
      optional string name = 1;
      optional uint32 type = 2;
      oneof value {
        uint32 int_value = 3;
        uint64 long_value = 4;
        float float_value = 5;
        double double_value = 6;
        bool boolean_value = 7;
        string string_value = 8;
        ParameterValueExtension extension_value = 9;
      }
      message ParameterValueExtension { extensions 1 to max; }
    }
    optional string version = 1;
    repeated Metric metrics = 2;
    repeated Parameter parameters = 3;
    optional string template_ref = 4;
    optional bool is_definition = 5;
    extensions 6 to max;
  }

  message DataSet {
    message DataSetValue {
      oneof value {
        uint32 int_value = 1;
        uint64 long_value = 2;
        float float_value = 3;
        double double_value = 4;
        bool boolean_value = 5;
        string string_value = 6;
        DataSetValueExtension extension_value = 7;
      }
      message DataSetValueExtension { extensions 1 to max; }
    }
    message Row {
      repeated DataSetValue elements = 1;
      extensions 2 to max;
    }
    optional uint64 num_of_columns = 1;
    repeated string columns = 2;
    repeated uint32 types = 3;
    repeated Row rows = 4;
    extensions 5 to max;
  }

  message PropertyValue {
    optional uint32 type = 1;
    optional bool is_null = 2;
    oneof value {
      uint32 int_value = 3;
      uint64 long_value = 4;
      float float_value = 5;
      double double_value = 6;
      bool boolean_value = 7;
      string string_value = 8;
      PropertySet propertyset_value = 9;
      PropertySetList propertysets_value = 10;
      PropertyValueExtension extension_value = 11;
    }
    message PropertyValueExtension { extensions 1 to max; }
  }

  message PropertySet {
    repeated string keys = 1;
    repeated PropertyValue values = 2;
    extensions 3 to max;
  }

  message PropertySetList {
    repeated PropertySet propertyset = 1;
    extensions 2 to max;
  }

  message MetaData {
    optional bool is_multi_part = 1;
    optional string content_type = 2;
    optional uint64 size = 3;
    optional uint64 seq = 4;
    optional string file_name = 5;
    optional string file_type = 6;
    optional string md5 = 7;
    optional string description = 8;
    extensions 9 to max;
  }

  message Metric {
    optional string name = 1;
    optional uint64 alias = 2;
    optional uint64 timestamp = 3;
    optional uint32 datatype = 4;
    optional bool is_historical = 5;
    optional bool is_transient = 6;
    optional bool is_null = 7;
    optional MetaData metadata = 8;
    optional PropertySet properties = 9;
    oneof value {
      uint32 int_value = 10;
      uint64 long_value = 11;
      float float_value = 12;
      double double_value = 13;
      bool boolean_value = 14;
      string string_value = 15;
      bytes bytes_value = 16;
      DataSet dataset_value = 17;
      Template template_value = 18;
      MetricValueExtension extension_value = 19;
    }
    message MetricValueExtension { extensions 1 to max; }
  }

  optional uint64 timestamp = 1;
  repeated Metric metrics = 2;
  optional uint64 seq = 3;
  optional string uuid = 4;
  optional bytes body = 5;
  extensions 6 to max;
}
`;

const root = protobuf.parse(SPARKPLUG_B_PROTO).root;

/** The top-level message type; `PayloadType.decode(buf)` throws on bytes that are not this protobuf. */
export const PayloadType: protobuf.Type = root.lookupType('org.eclipse.tahu.protobuf.Payload');

/** Sparkplug B datatype codes (Sparkplug 3.0 §6.4.16). */
export const DataType = {
  Unknown: 0,
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
  DateTime: 13,
  Text: 14,
  UUID: 15,
  DataSet: 16,
  Bytes: 17,
  File: 18,
  Template: 19,
  PropertySet: 20,
  PropertySetList: 21,
} as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

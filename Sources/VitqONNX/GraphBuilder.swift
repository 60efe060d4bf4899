import Foundation
import SwiftProtobuf

/// Builds one ONNX graph: nodes in topological order, initializers as raw little-endian data,
/// and fresh value names. The exporters (``ONNXExport``) say what to compute; this says how it is
/// spelled in onnx.proto's messages.
public final class GraphBuilder {
    /// An ONNX element type of an initializer or a graph input/output.
    public enum ElementType: Int32 {
        case float = 1, uint8 = 2, int8 = 3, int32 = 6, int64 = 7, double = 11
    }

    private(set) var graph = Onnx_GraphProto()
    private var used: [String: Int] = [:]

    public init(name: String) { graph.name = name }

    /// A value name unique in the graph, starting with `base`.
    public func fresh(_ base: String) -> String {
        let n = used[base, default: 0]
        used[base] = n + 1
        return n == 0 ? base : "\(base)_\(n)"
    }

    /// An initializer of `dims` from raw little-endian bytes.
    @discardableResult
    public func initializer(_ name: String, _ type: ElementType, dims: [Int], raw: Data) -> String {
        var t = Onnx_TensorProto()
        t.name = fresh(name)
        t.dataType = type.rawValue
        t.dims = dims.map(Int64.init)
        t.rawData = raw
        graph.initializer.append(t)
        return t.name
    }

    /// A float initializer.
    @discardableResult
    public func floats(_ name: String, _ values: [Float], dims: [Int]? = nil) -> String {
        precondition(dims.map { $0.reduce(1, *) } ?? values.count == values.count, "initializer \(name): dims and count disagree")
        return initializer(name, .float, dims: dims ?? [values.count], raw: values.withUnsafeBytes { Data($0) })
    }

    /// A float scalar initializer (rank 0).
    public func scalar(_ name: String, _ v: Float) -> String { floats(name, [v], dims: []) }

    /// A double initializer (the exact epilogue's constants).
    @discardableResult
    public func doubles(_ name: String, _ values: [Double], dims: [Int]) -> String {
        initializer(name, .double, dims: dims, raw: values.withUnsafeBytes { Data($0) })
    }

    /// An int64 initializer (shapes, axes, indices).
    @discardableResult
    public func int64s(_ name: String, _ values: [Int64], dims: [Int]? = nil) -> String {
        initializer(name, .int64, dims: dims ?? [values.count], raw: values.withUnsafeBytes { Data($0) })
    }

    /// An int8 initializer.
    public func int8s(_ name: String, _ values: [Int8], dims: [Int]) -> String {
        initializer(name, .int8, dims: dims, raw: values.withUnsafeBytes { Data($0) })
    }

    /// One node; returns its outputs' names (fresh names from `outputs`).
    @discardableResult
    public func node(_ op: String, _ inputs: [String], outputs: [String], _ attributes: [Onnx_AttributeProto] = [], name: String? = nil) -> [String] {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = outputs.map(fresh)
        n.name = fresh(name ?? n.output.first ?? op)
        n.attribute = attributes
        graph.node.append(n)
        return n.output
    }

    /// One node with one output named after `output`.
    public func op(_ op: String, _ inputs: [String], _ output: String, _ attributes: [Onnx_AttributeProto] = []) -> String {
        node(op, inputs, outputs: [output], attributes)[0]
    }

    /// A graph input or output of `type` and `shape` (a dimension is a size or a symbolic name).
    public enum Dim { case size(Int), symbol(String) }

    /// Declares a graph input.
    public func input(_ name: String, _ type: ElementType, _ shape: [Dim]) {
        graph.input.append(Self.valueInfo(name, type, shape))
    }

    /// Declares a graph output.
    public func output(_ name: String, _ type: ElementType, _ shape: [Dim]) {
        graph.output.append(Self.valueInfo(name, type, shape))
    }

    static func valueInfo(_ name: String, _ type: ElementType, _ shape: [Dim]) -> Onnx_ValueInfoProto {
        var v = Onnx_ValueInfoProto()
        v.name = name
        var t = Onnx_TypeProto.Tensor()
        t.elemType = type.rawValue
        t.shape.dim = shape.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            switch d {
            case let .size(n): dim.dimValue = Int64(n)
            case let .symbol(s): dim.dimParam = s
            }
            return dim
        }
        v.type.tensorType = t
        return v
    }

    /// The model around the graph: IR version, opset, producer, metadata.
    public func model(opset: Int, metadata: [(String, String)], producerVersion: String) -> Onnx_ModelProto {
        var m = Onnx_ModelProto()
        m.irVersion = opset >= 21 ? 10 : (opset >= 19 ? 9 : 8)
        m.producerName = "vitq"
        m.producerVersion = producerVersion
        var o = Onnx_OperatorSetIdProto()
        o.domain = ""
        o.version = Int64(opset)
        m.opsetImport = [o]
        m.metadataProps = metadata.map { k, v in
            var e = Onnx_StringStringEntryProto()
            e.key = k; e.value = v
            return e
        }
        m.graph = graph
        return m
    }
}

/// Attribute constructors.
public enum Attr {
    /// An int attribute; the others likewise for float and ints.
    public static func int(_ name: String, _ v: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto(); a.name = name; a.type = .int; a.i = Int64(v); return a
    }
    public static func float(_ name: String, _ v: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto(); a.name = name; a.type = .float; a.f = v; return a
    }
    public static func ints(_ name: String, _ v: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto(); a.name = name; a.type = .ints; a.ints = v.map(Int64.init); return a
    }
}

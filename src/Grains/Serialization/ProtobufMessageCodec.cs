using System.Buffers;
using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Orleans.Serialization;
using Orleans.Serialization.Buffers;
using Orleans.Serialization.Cloning;
using Orleans.Serialization.Codecs;
using Orleans.Serialization.Serializers;
using Orleans.Serialization.WireProtocol;

namespace ControlPlane.Grains.Serialization;

/// <summary>
/// Lets Orleans carry the API's protobuf messages as grain arguments and results. Between
/// silos (or to a client) a message travels as a number naming its type (a hash of its protobuf
/// name, stable across versions) and its protobuf bytes. Within a silo it is not copied at all:
/// a message handed to or returned from a grain is treated as immutable by convention — grains
/// clone what they keep and what they return — so the deep copy Orleans would make of every
/// argument is skipped. bench/Serialization.Bench measures both against [GenerateSerializer]
/// records of the same content.
/// </summary>
[Alias(WellKnownAlias)]
public sealed class ProtobufMessageCodec : IGeneralizedCodec, IGeneralizedCopier, ITypeFilter
{
    public const string WellKnownAlias = "controlplane.protobuf";

    private static readonly Type SelfType = typeof(ProtobufMessageCodec);

    // Every message type of the API, by type and by id.
    private static readonly FrozenDictionary<Type, uint> Ids;
    private static readonly FrozenDictionary<uint, MessageParser> Parsers;

    static ProtobufMessageCodec()
    {
        var ids = new Dictionary<Type, uint>();
        var parsers = new Dictionary<uint, MessageParser>();
        foreach (var type in typeof(Contracts.V1.Endpoint).Assembly.GetTypes().Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IMessage).IsAssignableFrom(t)))
        {
            var descriptor = (MessageDescriptor)type.GetProperty("Descriptor")!.GetValue(null)!;
            var id = TypeId(descriptor.FullName);
            if (!parsers.TryAdd(id, descriptor.Parser))
            {
                throw new InvalidOperationException($"{descriptor.FullName} shares its type id with another message");
            }
            ids[type] = id;
        }
        Ids = ids.ToFrozenDictionary();
        Parsers = parsers.ToFrozenDictionary();
    }

    public bool IsSupportedType(Type type) => type == SelfType || Ids.ContainsKey(type);

    public bool? IsTypeAllowed(Type type) => typeof(IMessage).IsAssignableFrom(type) ? Ids.ContainsKey(type) : null;

    [return: NotNullIfNotNull(nameof(input))]
    public object? DeepCopy(object? input, CopyContext context) => input;

    public void WriteField<TBufferWriter>(ref Writer<TBufferWriter> writer, uint fieldIdDelta, Type? expectedType, object? value)
        where TBufferWriter : IBufferWriter<byte>
    {
        if (ReferenceCodec.TryWriteReferenceField(ref writer, fieldIdDelta, expectedType, value))
        {
            return;
        }
        var message = (IMessage)value!;
        writer.WriteFieldHeader(fieldIdDelta, expectedType, SelfType, WireType.TagDelimited);
        ReferenceCodec.MarkValueField(writer.Session);
        writer.WriteFieldHeaderExpected(0, WireType.VarInt);
        writer.WriteVarUInt32(Ids[value!.GetType()]);
        var size = message.CalculateSize();
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(size, 1));
        try
        {
            message.WriteTo(buffer.AsSpan(0, size));
            ReferenceCodec.MarkValueField(writer.Session);
            writer.WriteFieldHeaderExpected(1, WireType.LengthPrefixed);
            writer.WriteVarUInt32((uint)size);
            writer.Write(buffer.AsSpan(0, size));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        writer.WriteEndObject();
    }

    public object ReadValue<TInput>(ref Reader<TInput> reader, Field field)
    {
        if (field.IsReference)
        {
            return ReferenceCodec.ReadReference(ref reader, field.FieldType)!;
        }
        field.EnsureWireTypeTagDelimited();
        var placeholder = ReferenceCodec.CreateRecordPlaceholder(reader.Session);
        MessageParser? parser = null;
        object? result = null;
        uint id = 0;
        while (true)
        {
            var header = reader.ReadFieldHeader();
            if (header.IsEndBaseOrEndObject)
            {
                break;
            }
            id += header.FieldIdDelta;
            switch (id)
            {
                case 0:
                    ReferenceCodec.MarkValueField(reader.Session);
                    var typeId = reader.ReadVarUInt32();
                    parser = Parsers.GetValueOrDefault(typeId) ?? throw new RequiredFieldMissingException($"protobuf message type {typeId:x8} is unknown here");
                    break;
                case 1:
                    ReferenceCodec.MarkValueField(reader.Session);
                    var length = (int)reader.ReadVarUInt32();
                    var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
                    try
                    {
                        reader.ReadBytes(buffer.AsSpan(0, length));
                        result = (parser ?? throw new RequiredFieldMissingException("a protobuf message arrived before its type")).ParseFrom(buffer.AsSpan(0, length));
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                    }
                    break;
                default:
                    reader.ConsumeUnknownField(header);
                    break;
            }
        }
        ReferenceCodec.RecordObject(reader.Session, result, placeholder);
        return result ?? throw new RequiredFieldMissingException("a protobuf message arrived without its bytes");
    }

    /// <summary>FNV-1a of the protobuf name.</summary>
    private static uint TypeId(string protobufName)
    {
        var hash = 2166136261u;
        foreach (var c in protobufName)
        {
            hash = (hash ^ c) * 16777619u;
        }
        return hash;
    }
}

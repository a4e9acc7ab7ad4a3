using System.Buffers;
using ControlPlane.Contracts.V1;
using Grpc.AspNetCore.Server;
using Grpc.Core;

namespace ControlPlane.Silo.Api;

/// <summary>
/// The binding of controlplane.v1.Watch/Watch with a marshaller of already-encoded events (see
/// <see cref="EncodedEvent"/>) instead of the generated one. Grpc.AspNetCore binds a service
/// through a base type's static BindService and virtual handler methods, as generated stubs do;
/// server reflection describes it with the generated service's descriptor.
/// </summary>
[BindServiceMethod(typeof(WatchServiceBase), nameof(BindService))]
public abstract class WatchServiceBase
{
    private static readonly Method<WatchRequest, EncodedEvent> WatchMethod = new(
        MethodType.ServerStreaming, Contracts.V1.Watch.Descriptor.FullName, "Watch",
        Marshallers.Create(
            (request, context) =>
            {
                context.SetPayloadLength(request.CalculateSize());
                Google.Protobuf.MessageExtensions.WriteTo(request, context.GetBufferWriter());
                context.Complete();
            },
            context => WatchRequest.Parser.ParseFrom(context.PayloadAsReadOnlySequence())),
        Marshallers.Create<EncodedEvent>(
            (e, context) =>
            {
                context.SetPayloadLength(e.Head.Length + e.TailLength);
                var writer = context.GetBufferWriter();
                writer.Write(e.Head);
                writer.Write(e.Tail.AsSpan(0, e.TailLength));
                context.Complete();
            },
            _ => throw new NotSupportedException("the server never reads watch events")));

    /// <summary>What server reflection describes: the generated service.</summary>
    public static Google.Protobuf.Reflection.ServiceDescriptor Descriptor => Contracts.V1.Watch.Descriptor;

    public static void BindService(ServiceBinderBase binder, WatchServiceBase? service) =>
        binder.AddMethod(WatchMethod, service is null ? null : service.Watch);

    public virtual Task Watch(WatchRequest request, IServerStreamWriter<EncodedEvent> stream, ServerCallContext call) =>
        throw new RpcException(new Status(StatusCode.Unimplemented, "Watch is not implemented"));
}

using System.Reflection;
using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;

namespace ControlPlane.Silo.Api;

/// <summary>
/// Binds every gRPC service the way Grpc.AspNetCore does (through its generated BindService and
/// the service's overriding methods), with one difference: a request that is not a valid
/// protobuf message fails INVALID_ARGUMENT, saying what it should have been, instead of the
/// UNKNOWN "exception was thrown by handler" a parse failure would give, and fields this
/// version does not know are dropped. It replaces Grpc.AspNetCore's default method provider.
/// </summary>
public sealed class ValidatingMethodProvider<TService> : IServiceMethodProvider<TService> where TService : class
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<TService> context)
    {
        var attribute = typeof(TService).GetCustomAttribute<BindServiceMethodAttribute>(inherit: true);
        if (attribute is null)
        {
            return;
        }
        var bind = attribute.BindType.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static).SingleOrDefault(m =>
                m.Name == attribute.BindMethodName && m.GetParameters() is [var binder, var service]
                && binder.ParameterType == typeof(ServiceBinderBase) && service.ParameterType.IsAssignableFrom(typeof(TService)))
            ?? throw new InvalidOperationException($"{attribute.BindType} has no {attribute.BindMethodName}(ServiceBinderBase, {typeof(TService).Name})");
        bind.Invoke(null, [new Binder(context), null]);
    }

    private sealed class Binder(ServiceMethodProviderContext<TService> context) : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
            context.AddUnaryMethod(Validating(method), MetadataOf(Handler(method.Name, typeof(TRequest), typeof(ServerCallContext)), out var target),
                target.CreateDelegate<UnaryServerMethod<TService, TRequest, TResponse>>());

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddServerStreamingMethod(Validating(method), MetadataOf(Handler(method.Name, typeof(TRequest), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext)), out var target),
                target.CreateDelegate<ServerStreamingServerMethod<TService, TRequest, TResponse>>());

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddClientStreamingMethod(Validating(method), MetadataOf(Handler(method.Name, typeof(IAsyncStreamReader<TRequest>), typeof(ServerCallContext)), out var target),
                target.CreateDelegate<ClientStreamingServerMethod<TService, TRequest, TResponse>>());

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddDuplexStreamingMethod(Validating(method), MetadataOf(Handler(method.Name, typeof(IAsyncStreamReader<TRequest>), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext)), out var target),
                target.CreateDelegate<DuplexStreamingServerMethod<TService, TRequest, TResponse>>());

        /// <summary>The service's (overriding) public method that handles a gRPC method.</summary>
        private static MethodInfo Handler(string name, params Type[] parameters) =>
            typeof(TService).GetMethod(name, BindingFlags.Public | BindingFlags.Instance, parameters)
            ?? throw new InvalidOperationException($"{typeof(TService)} has no method {name}");

        /// <summary>What endpoint metadata ASP.NET sees: the service's and the method's attributes.</summary>
        private static List<object> MetadataOf(MethodInfo handler, out MethodInfo target)
        {
            target = handler;
            return [.. typeof(TService).GetCustomAttributes(inherit: true), .. handler.GetCustomAttributes(inherit: true)];
        }

        private static Method<TRequest, TResponse> Validating<TRequest, TResponse>(Method<TRequest, TResponse> method)
            where TRequest : class where TResponse : class
        {
            var marshaller = method.RequestMarshaller;
            var message = typeof(IMessage).IsAssignableFrom(typeof(TRequest)) ? (IMessage)Activator.CreateInstance(typeof(TRequest))! : null;
            var requestName = message?.Descriptor.FullName ?? typeof(TRequest).Name;
            // Fields this server does not know are dropped, not stored: they were never validated,
            // and a later version that knows them must not find them in state it did not check.
            var parser = message?.Descriptor.Parser.WithDiscardUnknownFields(true);
            // Discarding skips an unknown field without reading it, so a wire type that does not
            // exist (6, 7) would pass unnoticed and the bytes after it be read as fields: a parser
            // that keeps unknown fields reads each one and refuses such a message first.
            var strict = message?.Descriptor.Parser;
            var validating = Marshallers.Create(marshaller.ContextualSerializer, deserialization =>
            {
                try
                {
                    if (parser is null) return marshaller.ContextualDeserializer(deserialization);
                    var payload = deserialization.PayloadAsReadOnlySequence();
                    strict!.ParseFrom(payload);
                    return (TRequest)parser.ParseFrom(payload);
                }
                catch (InvalidProtocolBufferException e)
                {
                    throw new RpcException(new Status(StatusCode.InvalidArgument, $"the request is not a valid {requestName} message: {e.Message}"));
                }
            });
            return new Method<TRequest, TResponse>(method.Type, method.ServiceName, method.Name, validating, method.ResponseMarshaller);
        }
    }
}

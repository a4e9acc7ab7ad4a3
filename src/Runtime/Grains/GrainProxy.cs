using System.Collections.Concurrent;
using System.Reflection;

namespace ControlPlane.Runtime.Grains;

/// <summary>
/// The reference a caller holds: a runtime-generated implementation of the grain interface
/// that routes every call through the activation's turn gate. Methods must return Task or
/// Task&lt;T&gt;; <see cref="ReadOnlyAttribute"/> on the interface method allows interleaving.
/// </summary>
public class GrainProxy : DispatchProxy
{
    private static readonly ConcurrentDictionary<MethodInfo, Func<GrainRuntime, GrainId, MethodInfo, object?[]?, object>> Dispatchers = new();
    private static readonly MethodInfo InvokeTypedMethod = typeof(GrainProxy).GetMethod(nameof(InvokeTyped), BindingFlags.NonPublic | BindingFlags.Static)!;

    private GrainRuntime? _runtime;
    private GrainId _id;

    internal void Bind(GrainRuntime runtime, GrainId id)
    {
        _runtime = runtime;
        _id = id;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        var dispatch = Dispatchers.GetOrAdd(targetMethod, CreateDispatcher);
        return dispatch(_runtime!, _id, targetMethod, args);
    }

    private static Func<GrainRuntime, GrainId, MethodInfo, object?[]?, object> CreateDispatcher(MethodInfo method)
    {
        var readOnly = method.GetCustomAttribute<ReadOnlyAttribute>() is not null;
        var returnType = method.ReturnType;
        if (returnType == typeof(Task))
        {
            return (runtime, id, m, args) => runtime.InvokeAsync<bool>(id, async grain =>
            {
                await ((Task)m.Invoke(grain, BindingFlags.DoNotWrapExceptions, null, args, null)!).ConfigureAwait(false);
                return true;
            }, readOnly);
        }
        if (returnType.IsGenericType && returnType.GetGenericTypeDefinition() == typeof(Task<>))
        {
            var typed = InvokeTypedMethod.MakeGenericMethod(returnType.GetGenericArguments()[0]);
            var call = typed.CreateDelegate<Func<GrainRuntime, GrainId, MethodInfo, object?[]?, bool, object>>();
            return (runtime, id, m, args) => call(runtime, id, m, args, readOnly);
        }
        throw new NotSupportedException($"grain method {method.DeclaringType?.Name}.{method.Name} must return Task or Task<T>");
    }

    private static object InvokeTyped<T>(GrainRuntime runtime, GrainId id, MethodInfo method, object?[]? args, bool readOnly) =>
        runtime.InvokeAsync(id, grain => (Task<T>)method.Invoke(grain, BindingFlags.DoNotWrapExceptions, null, args, null)!, readOnly);
}

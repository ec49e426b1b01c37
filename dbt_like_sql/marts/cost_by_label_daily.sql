-- Direct workload cost by every pod label and namespace label a workload carries. A workload with
-- several labels counts once under each key, so add up within one label_key only.
with allocation as (

    select * from {{ ref('stg_allocation') }}
    where allocation_kind = 'container'

),

pod_labels as (

    select
        cast(hour_start as date) as day,
        cluster,
        'pod' as label_source,
        l.key as label_key,
        l.value as label_value,
        total_cost

    from allocation, unnest(labels) as t (l)

),

namespace_labels as (

    select
        cast(hour_start as date) as day,
        cluster,
        'namespace' as label_source,
        l.key as label_key,
        l.value as label_value,
        total_cost

    from allocation, unnest(namespace_labels) as t (l)

),

final as (

    select
        day,
        cluster,
        label_source,
        label_key,
        label_value,
        sum(total_cost) as direct_cost

    from (select * from pod_labels union all select * from namespace_labels)
    group by all

)

select * from final

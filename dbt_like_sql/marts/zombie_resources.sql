-- Volumes, claims, services and load balancers that no workload has used for the last N hours of
-- each cluster's inventory (N from config), what they cost per month and the tags to put on them.
with rules as (

    select * from {{ source('config', 'rules') }}

),

inventory as (

    select * from {{ ref('stg_inventory') }}

),

recent as (

    select
        i.*,
        max(i.hour_start) over (partition by i.cluster) as last_hour

    from inventory as i

),

window_rows as (

    select r.*

    from recent as r
    cross join rules
    where r.hour_start > r.last_hour - to_hours(rules.zombie_hours)

),

snapshots as (

    select
        cluster,
        count(distinct hour_start) as hours

    from window_rows
    group by all

),

claimed_volumes as (

    select distinct
        cluster,
        volume_name

    from window_rows
    where object_kind = 'persistentvolumeclaim'
        and volume_name is not null

),

mounted_claims as (

    select distinct
        cluster,
        namespace,
        claim_name

    from window_rows
    where object_kind = 'pod_volume'

),

served_services as (

    select distinct
        cluster,
        namespace,
        name

    from window_rows
    where object_kind = 'endpoint'
        and ready_endpoints > 0

),

volumes as (

    select
        w.cluster,
        'persistentvolume' as object_kind,
        '' as namespace,
        w.name,
        'pv_not_bound' as reason,
        'PersistentVolume ' || arg_max(w.phase, w.hour_start) || ' with no claim' as detail,
        count(distinct w.hour_start) as unused_hours,
        min(w.hour_start) as first_unused_hour,
        max(w.capacity_gib) as capacity_gib

    from window_rows as w
    where w.object_kind = 'persistentvolume'
        and w.phase in ('Released', 'Available', 'Failed')
        and not exists (
            select 1
            from claimed_volumes as c
            where c.cluster = w.cluster
                and c.volume_name = w.name
        )
    group by w.cluster, w.name

),

claims as (

    select
        w.cluster,
        'persistentvolumeclaim' as object_kind,
        w.namespace,
        w.name,
        'pvc_not_mounted' as reason,
        'claim bound to ' || coalesce(any_value(w.volume_name), '?') || ' but mounted by no pod'
            as detail,
        count(distinct w.hour_start) as unused_hours,
        min(w.hour_start) as first_unused_hour,
        null::double as capacity_gib

    from window_rows as w
    where w.object_kind = 'persistentvolumeclaim'
        and not exists (
            select 1
            from mounted_claims as m
            where m.cluster = w.cluster
                and m.namespace = w.namespace
                and m.claim_name = w.name
        )
    group by w.cluster, w.namespace, w.name

),

services as (

    select
        w.cluster,
        'service' as object_kind,
        w.namespace,
        w.name,
        case
            when arg_max(w.service_type, w.hour_start) = 'LoadBalancer'
                then 'load_balancer_without_endpoints'
            else 'service_without_endpoints'
        end as reason,
        arg_max(w.service_type, w.hour_start) || ' service with no ready endpoints' as detail,
        count(distinct w.hour_start) as unused_hours,
        min(w.hour_start) as first_unused_hour,
        null::double as capacity_gib

    from window_rows as w
    where w.object_kind = 'service'
        and w.service_type <> 'ExternalName'
        and not exists (
            select 1
            from served_services as s
            where s.cluster = w.cluster
                and s.namespace = w.namespace
                and s.name = w.name
        )
    group by w.cluster, w.namespace, w.name

),

candidates as (

    select * from volumes
    union all
    select * from claims
    union all
    select * from services

),

volume_costs as (

    select
        cluster,
        persistentvolume,
        sum(volume_cost) / count(distinct hour_start) as hourly_cost

    from {{ ref('stg_volume_costs') }}
    group by all

),

claim_volumes as (

    select
        cluster,
        namespace,
        name,
        arg_max(volume_name, hour_start) as volume_name

    from inventory
    where object_kind = 'persistentvolumeclaim'
    group by all

),

lb_costs as (

    select
        cluster,
        namespace,
        service,
        sum(load_balancer_cost) / count(distinct hour_start) as hourly_cost

    from {{ ref('stg_load_balancer_costs') }}
    group by all

),

final as (

    select
        c.cluster,
        c.object_kind,
        c.namespace,
        c.name,
        c.reason,
        c.detail,
        c.unused_hours,
        c.first_unused_hour,
        c.capacity_gib,
        cast(
            coalesce(vc.hourly_cost, cvc.hourly_cost, lb.hourly_cost, 0) * rules.hours_per_month
            as decimal(38, 9)
        ) as monthly_cost,
        case c.object_kind
            when 'persistentvolume' then 'delete the volume after a last snapshot'
            when 'persistentvolumeclaim' then 'delete the claim, or mount it again'
            else 'delete the service, or give it a selector that matches running pods'
        end as recommended_action,
        'finops.io/zombie=true,finops.io/zombie-reason=' || c.reason
            || ',finops.io/zombie-since=' || strftime(c.first_unused_hour, '%Y-%m-%d')
            as suggested_tags

    from candidates as c
    cross join rules
    join snapshots as s
        using (cluster)
    left join volume_costs as vc
        on c.object_kind = 'persistentvolume'
        and vc.cluster = c.cluster
        and vc.persistentvolume = c.name
    left join claim_volumes as cv
        on c.object_kind = 'persistentvolumeclaim'
        and cv.cluster = c.cluster
        and cv.namespace = c.namespace
        and cv.name = c.name
    left join volume_costs as cvc
        on cvc.cluster = cv.cluster
        and cvc.persistentvolume = cv.volume_name
    left join lb_costs as lb
        on c.object_kind = 'service'
        and lb.cluster = c.cluster
        and lb.namespace = c.namespace
        and lb.service = c.name
    -- unused in every snapshot of the window, not just some of it
    where c.unused_hours = s.hours
        and s.hours >= rules.zombie_hours

)

select * from final

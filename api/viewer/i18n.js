// The page's words, Chinese first: zh-CN unless the address asks for `?lang=en`.
//
// `t(key, vars)` looks a key up in the page's language (then in Chinese, then returns the
// key itself) and fills `{name}` holes from `vars`; `translatePage()` fills every element
// carrying `data-i18n` (its text) or `data-i18n-title` / `data-i18n-placeholder`.

const query = new URLSearchParams(location.search);
export const lang = query.get('lang') === 'en' ? 'en' : 'zh';

const WORDS = {
  zh: {
    brand: '城市运行管理中心', motto: '一屏观天下', switchLang: 'EN', switchTitle: 'Switch to English',
    starting: '正在启动…', colourByKind: '按类型着色', wholeUnit: '整栋', snapshot: '快照',
    sensorsOnline: '传感器在线', activeAlerts: '活动告警', openCases: '在办案件', drillsRunning: '进行中的演练', vitalSigns: '城市体征（当前最高）', reporting: '{n} 个在报', noReadings: '暂无读数',
    alerts: '实时告警', cases: '案件处置', noAlerts: '当前无告警', noCases: '暂无案件', noDrills: '无',
    wholeCity: '全市', deadline: '时限', overdue: '已超时 {t}', left: '剩余 {t}', noDeadline: '未派遣',
    hours: '{h} 小时 {m} 分', minutes: '{m} 分钟', days: '{d} 天 {h} 小时',
    metres: '{n} 米', kilometres: '{n} 公里', north: '北', unitOf: '单位：{u}', legendNoUnit: '无单位',
    loadingTiles: '{site}：正在加载瓦片…', tiles: '{site}：已加载 {n} 个瓦片', buildingTiles: '正在生成瓦片 {p}% · {m}',
    yourUnit: '{site}：本单元', noSites: '尚无场景：请先用 `twin import` 导入', error: '错误：{m}',
    badKey: '未知或缺少 API 密钥', live: '实时', offline: '连接中断，重连中…',
    login: '城市孪生', loginHelp: '请输入 API 密钥（`make run` 会打印一个；也在 .twin/admin.key 中）。', open: '进入',
    people: '人数', unitSensors: '在线传感器', unitAlerts: '活动告警', unitCases: '在办案件', none: '无',
    evacuate: '疏散演练', evacuating: '疏散演练 {p}%', bottlenecks: '瓶颈', out: '已疏散 {out} / {all} 人',
    notOut: '（{n} 人未疏散）', storeyLine: '{name}：{people} 人，{s} 秒疏散完毕', trapped: '，{n} 人受困',
    queue: '排队 {n}', crowd: '人群演练 {state} {p}%', crowdDone: '人群演练：{agents} 人，T100 {t} 秒，峰值 {d} 人/m²',
    peakDensity: '峰值密度', crowdLegend: '人群演练，人/m²', zone: '分区 {z}', fruin: 'Fruin 服务水平 {l}',
    peak: '峰值 {d} 人/m²', above: '高于 {l} 人/m²', seconds: '{s} 秒',
    sev_red: '红色', sev_orange: '橙色', sev_yellow: '黄色', sev_blue: '蓝色',
    step_reported: '上报', step_filed: '立案', step_dispatched: '派遣', step_handled: '处置', step_verified: '核查',
    step_closed: '已结案', step_cancelled: '已撤销', closedCases: '已结案 {n}',
    stage_filed: '立案', stage_dispatched: '派遣', stage_handled: '处置', stage_verified: '核查', stage_closed: '结案',
    kind_Building: '建筑', kind_BuildingPart: '建筑部件', kind_Road: '道路', kind_WaterBody: '水体',
    kind_IfcBuilding: '建筑（IFC）', kind_IfcBuildingStorey: '楼层', kind_IfcSpace: '房间',
    kind_TINRelief: '地形', kind_Bridge: '桥梁', kind_Manhole: '检查井', kind_Conduit: '管道',
  },
  en: {
    brand: 'City Operations Centre', motto: 'the city on one screen', switchLang: '中文', switchTitle: '切换到中文',
    starting: 'starting…', colourByKind: 'colour by kind', wholeUnit: 'whole unit', snapshot: 'snapshot',
    sensorsOnline: 'sensors online', activeAlerts: 'active alerts', openCases: 'open cases', drillsRunning: 'drills running', vitalSigns: 'vital signs (highest now)', reporting: '{n} reporting', noReadings: 'no readings yet',
    alerts: 'Alerts', cases: 'Cases', noAlerts: 'no active alerts', noCases: 'no cases', noDrills: 'none',
    wholeCity: 'whole city', deadline: 'deadline', overdue: 'overdue {t}', left: '{t} left', noDeadline: 'not dispatched',
    hours: '{h} h {m} min', minutes: '{m} min', days: '{d} d {h} h',
    metres: '{n} m', kilometres: '{n} km', north: 'N', unitOf: 'unit: {u}', legendNoUnit: 'no unit',
    loadingTiles: '{site}: loading tiles…', tiles: '{site}: {n} tiles', buildingTiles: 'building tiles {p}% · {m}',
    yourUnit: '{site}: your unit', noSites: 'no sites yet: import one with `twin import`', error: 'error: {m}',
    badKey: 'unknown or missing API key', live: 'live', offline: 'connection lost, reconnecting…',
    login: 'City twin', loginHelp: 'Enter an API key (`make run` prints one; it is also in .twin/admin.key).', open: 'Open',
    people: 'people', unitSensors: 'sensors online', unitAlerts: 'active alerts', unitCases: 'open cases', none: 'none',
    evacuate: 'evacuation drill', evacuating: 'evacuation drill {p} %', bottlenecks: 'bottlenecks', out: '{out} / {all} out',
    notOut: ' ({n} not out)', storeyLine: '{name}: {people} people, out {s} s', trapped: ', {n} trapped',
    queue: 'queue {n}', crowd: 'crowd drill {state} {p}%', crowdDone: 'crowd drill: {agents} people, T100 {t} s, peak {d} P/m²',
    peakDensity: 'peak density', crowdLegend: 'crowd drill, persons/m²', zone: 'zone {z}', fruin: 'Fruin level {l}',
    peak: 'peak {d} persons/m²', above: 'above {l}/m²', seconds: '{s} s',
    sev_red: 'red', sev_orange: 'orange', sev_yellow: 'yellow', sev_blue: 'blue',
    step_reported: 'reported', step_filed: 'filed', step_dispatched: 'dispatched', step_handled: 'handled',
    step_verified: 'verified', step_closed: 'closed', step_cancelled: 'cancelled', closedCases: '{n} closed',
    stage_filed: 'filing', stage_dispatched: 'dispatch', stage_handled: 'handling', stage_verified: 'checking',
    stage_closed: 'closing',
  },
};

export function t(key, vars = {}) {
  const text = WORDS[lang][key] ?? WORDS.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (vars[name] === undefined ? '' : String(vars[name])));
}

// a word for a data value (a kind, a severity, a case state), or the value itself
export function term(prefix, value) {
  const key = `${prefix}_${value}`;
  return WORDS[lang][key] ?? (lang === 'zh' ? WORDS.zh[key] : undefined) ?? String(value);
}

export function translatePage() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
}

// the same page in the other language (the site and other choices kept)
export function otherLanguageUrl() {
  const next = new URLSearchParams(location.search);
  if (lang === 'zh') next.set('lang', 'en'); else next.delete('lang');
  const search = next.toString();
  return location.pathname + (search ? `?${search}` : '');
}
